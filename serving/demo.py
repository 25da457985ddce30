"""The end of ``make demo``: serve the bundle just trained and ask the real endpoint for explained answers."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hyperrec.config import HyperrecConfig
from hyperrec.data.prepared import PreparedData

logger = logging.getLogger(__name__)


def demo_requests(data: PreparedData, n_users: int = 2, history_items: int = 10) -> list[dict[str, Any]]:
    """Requests a client would send: recent histories of a few real (pseudonymized) users, and a new user."""
    train = data.split("train").sort_values(["user_id", "timestamp"])
    users = sorted(train["user_id"].unique())[:n_users]
    requests = [
        {
            "user_id": f"demo-user-{i + 1}",
            "history": train.loc[train["user_id"] == user, "item_id"].astype(str).tolist()[-history_items:],
            "k": 5,
            "explain": True,
        }
        for i, user in enumerate(users)
    ]
    requests.append({"user_id": "demo-new-user", "k": 5, "explain": True})
    return requests


def ask_served_model(
    cfg: HyperrecConfig, bundle: Path, requests: list[dict[str, Any]], *, config_path: Path | None = None,
    overrides: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Start the embedded predictor and transformer on 127.0.0.1, post each request, stop both servers."""
    import httpx

    from hyperrec.serving.local import LocalServers

    answers = []
    with LocalServers(bundle, cfg.serving, config_path=config_path, overrides=overrides) as endpoints:
        logger.info("serving %s at %s", bundle, endpoints.recommend_url)
        with httpx.Client(timeout=cfg.serving.request_timeout_s + 5) as client:
            for body in requests:
                response = client.post(endpoints.recommend_url, json=body)
                response.raise_for_status()
                answers.append(response.json())
    return answers

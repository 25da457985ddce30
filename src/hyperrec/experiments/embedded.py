"""What a canary decision does to an embedded ``hyperrec serve`` split (``canary.embedded_url``).

The same decisions as on a cluster (``actions.CanaryActions``), with the transformer's own split in place of
``canaryTrafficPercent`` or the route's weights:

- ramp to ``p`` %: ``PUT /hyperrec/split {"challenger_percent": p}``;
- promotion: the split to 100 % and MLflow ``champion`` → the challenger (``BundleRegistry.promote``);
- rollback: the split to 0 %, the ``challenger`` alias removed, the version tagged.

Before any move the server must serve the canary's challenger version (``registered_version`` of its
challenger revision), so a controller never moves the traffic of another canary.
"""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from typing import Any

from hyperrec.deploy.source import DeployError
from hyperrec.experiments.actions import CanaryActions, CanaryTarget
from hyperrec.experiments.settings import CanaryConfig

logger = logging.getLogger(__name__)

SPLIT_PATH = "/hyperrec/split"
TIMEOUT_S = 10.0


class EmbeddedCanaryActions(CanaryActions):
    """``CanaryActions`` whose traffic moves are the embedded transformer's split."""

    def __init__(
        self, url: str, registry: Any, deploy: Any, canary: CanaryConfig, target: CanaryTarget
    ) -> None:
        super().__init__(None, registry, deploy.model_copy(update={"mode": "Serverless"}), canary, target)
        self.url = url.rstrip("/") + SPLIT_PATH

    def start(self, percent: int) -> None:
        """``hyperrec serve --challenger-… --challenger-percent`` starts an embedded canary."""
        raise ValueError(
            "an embedded canary is started by `hyperrec serve --challenger-registered NAME@challenger`"
        )

    def _set_traffic(self, percent: int) -> None:
        self._check_serves_challenger_embedded()
        body = {"challenger_percent": percent}
        self._call("PUT", body)
        self.sent.append(("put", SPLIT_PATH, body))
        logger.info("embedded split at %s: challenger %d%%", self.url, percent)

    def _promote_final(self) -> None:
        self._set_traffic(100)

    def _check_serves_challenger_embedded(self) -> None:
        state = self._call("GET")
        served = (state.get("revisions", {}).get(self.canary.prometheus.challenger) or {}).get(
            "registered_version"
        )
        if served != self.target.challenger_version:
            raise DeployError(
                f"the embedded server at {self.url} serves challenger version {served}, not the "
                f"canary's v{self.target.challenger_version}; refusing to move traffic"
            )

    def _call(self, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            raise DeployError(f"{method} {self.url} refused: {exc.code} {exc.read()[:300]!r}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise DeployError(f"cannot reach the embedded server at {self.url}: {exc}") from None

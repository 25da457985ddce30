"""The framework-free recommendation path: request → model input → (predictor) → ranked, explained answer.

The KServe transformer calls ``prepare`` in preprocess, sends ``Plan.model_inputs`` to the predictor, and
calls ``answer`` in postprocess. Nothing here knows about HTTP, KServe or Triton, so every rule is tested on
plain arrays. A ``Plan`` carries all per-request state; the service itself is immutable after construction.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from hyperrec.features import encode_histories, encode_segments
from hyperrec.online.catalogue import Catalogue
from hyperrec.online.explain import explain, explanation_method
from hyperrec.online.ranking import blend_popularity, eligible_mask, popularity_scores, top_k_diverse
from hyperrec.online.requests import RecommendRequest, parse_request
from hyperrec.online.settings import ServingConfig


@dataclass(frozen=True)
class Plan:
    """Everything one request needs between preprocess and postprocess."""

    request: RecommendRequest
    history_idx: np.ndarray
    unknown_items: tuple[str, ...]
    candidate_idx: np.ndarray | None
    segment: int | None
    #: encode_histories / encode_segments output for a batch of one; None: no model call (cold start).
    model_inputs: dict[str, np.ndarray] | None

    @property
    def needs_model(self) -> bool:
        return self.model_inputs is not None


class RecommendationService:
    """Turns requests into answers for one bundle (catalogue + model identity)."""

    def __init__(
        self,
        catalogue: Catalogue,
        *,
        model_name: str,
        model_version: str,
        max_history: int,
        settings: ServingConfig,
        pseudonymize: Callable[[str], str],
    ) -> None:
        self.catalogue = catalogue
        self.model_name = model_name
        self.model_version = model_version
        self.max_history = max_history
        self.settings = settings
        self._pseudonymize = pseudonymize

    def prepare(self, body: Any, header_request_id: str | None = None) -> Plan:
        """Validate the request and build the model input with hyperrec.features (raises InvalidRequest)."""
        request = parse_request(
            body, settings=self.settings, pseudonymize=self._pseudonymize, model_name=self.model_name,
            header_request_id=header_request_id,
        )
        index = self.catalogue.index
        unknown: list[str] = []
        history: list[int] = []
        for event in request.history:
            idx = index.get(event.item_id)
            if idx is None:
                unknown.append(event.item_id)
            else:
                history.append(idx)
        candidate_idx = None
        if request.candidates is not None:
            known = [index[c] for c in request.candidates if c in index]
            unknown += [c for c in request.candidates if c not in index]
            candidate_idx = np.unique(np.array(known, dtype=np.int64))
        segment = self.catalogue.user_segments.get(request.user)
        history_idx = np.array(history, dtype=np.int64)
        model_inputs = None
        if history_idx.size:
            model_inputs = {
                "history": encode_histories([history_idx], self.max_history),
                "segment": encode_segments([segment]),
            }
        return Plan(
            request=request,
            history_idx=history_idx,
            unknown_items=tuple(dict.fromkeys(unknown)),
            candidate_idx=candidate_idx,
            segment=segment,
            model_inputs=model_inputs,
        )

    def answer(
        self, plan: Plan, scores: np.ndarray | None, *, degraded_reason: str | None = None
    ) -> dict[str, Any]:
        """Rank (or fall back to popularity), apply the rules, explain; the JSON-ready response."""
        cat, settings, request = self.catalogue, self.settings, plan.request
        exclude = plan.history_idx if settings.exclude_seen else None
        if scores is not None:
            scores = np.asarray(scores, dtype=np.float64).reshape(-1)
            source = "model"
            mask = eligible_mask(cat.n_items, scores, exclude=exclude, candidates=plan.candidate_idx)
            ranked_scores = blend_popularity(scores, cat.popularity, settings.popularity_weight, mask)
        else:
            ranked_scores, source = popularity_scores(cat.popularity, cat.segment_popularity, plan.segment)
            mask = eligible_mask(cat.n_items, ranked_scores, exclude=exclude, candidates=plan.candidate_idx)
        ranked = top_k_diverse(ranked_scores, mask, request.k, cat.category_codes, settings.max_per_category)
        reasons = (
            explain(cat, ranked.items, plan.history_idx, settings.explain_top_n) if request.explain else None
        )
        recommendations = []
        for rank, (item, score) in enumerate(zip(ranked.items.tolist(), ranked.scores.tolist()), start=1):
            entry: dict[str, Any] = {
                "rank": rank,
                "item_id": cat.item_ids[item],
                "title": cat.titles[item],
                "categories": list(cat.categories[item]),
                "score": round(float(score), 6),
            }
            if reasons is not None:
                entry["because"] = [
                    {"item_id": cat.item_ids[b.item_idx], "title": cat.titles[b.item_idx], "similarity": b.similarity}
                    for b in reasons[rank - 1]
                ]
            recommendations.append(entry)
        response: dict[str, Any] = {
            "request_id": request.request_id,
            "model": {"name": self.model_name, "version": self.model_version},
            "source": source,
            "degraded": degraded_reason is not None,
            "recommendations": recommendations,
            "unknown_items": list(plan.unknown_items),
        }
        if degraded_reason is not None:
            response["degraded_reason"] = degraded_reason
        if request.explain:
            response["explanation_method"] = explanation_method(cat)
        return response

    def describe(self) -> Mapping[str, Any]:
        """Model identity for logs and health answers (no user data)."""
        return {"model": self.model_name, "version": self.model_version, "n_items": self.catalogue.n_items}

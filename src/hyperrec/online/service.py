"""The framework-free recommendation path: request → model input → (predictor) → ranked, explained answer.

The KServe transformer calls ``prepare`` (``parse`` then ``plan``) in preprocess, sends ``Plan.model_inputs``
to the predictor, and calls ``respond`` in postprocess. Nothing here knows about HTTP, KServe or Triton, so
every rule is tested on plain arrays. A ``Plan`` carries all per-request state; the service itself is
immutable after construction.

Every answer is traceable: request id, model name and version, ``revision`` (champion or challenger), the
policy that chose the slate, and per recommendation its position (``rank``) and ``propensity`` (the chance
the policy had of showing that item there; 1 for the plain ranking). ``respond`` also returns the ``Slate``
(hyperrec.online.bandits) that the transformer logs as impressions and later joins with the feedback.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from hyperrec.features import encode_histories, encode_segments
from hyperrec.online.bandits.context import BanditContext, Candidates
from hyperrec.online.bandits.reranker import BanditReranker, Slate
from hyperrec.online.catalogue import Catalogue
from hyperrec.online.cold_items import reserve_cold_slot
from hyperrec.online.explain import explain, explanation_method
from hyperrec.online.ranking import (
    RankedItems,
    blend_popularity,
    eligible_mask,
    popularity_scores,
    top_k_diverse,
)
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
    #: False for a user without consent to personalization (hyperrec.privacy): no history, segment or per-user
    #: state.
    personalized: bool = True

    @property
    def needs_model(self) -> bool:
        return self.model_inputs is not None

    @property
    def context(self) -> BanditContext:
        """The user side of the request as the bandit (and the served log) sees it."""
        user = self.request.user if self.personalized else None
        return BanditContext(self.segment, int(self.history_idx.size), user)


#: Policy name of answers in the ranker's own order (no bandit, or a degraded answer).
RANKER_POLICY = "ranker"


@dataclass(frozen=True)
class Answered:
    """The JSON-ready response and the slate it shows (what the served log records)."""

    response: dict[str, Any]
    slate: Slate
    #: The ranker's candidates the bandit chose among, best first; None for the plain ranking.
    candidates: tuple[str, ...] | None = None


class RecommendationService:
    """Turns requests into answers for one bundle (catalogue + model identity) of one revision."""

    def __init__(
        self,
        catalogue: Catalogue,
        *,
        model_name: str,
        model_version: str,
        max_history: int,
        settings: ServingConfig,
        pseudonymize: Callable[[str], str],
        revision: str | None = None,
        registered_version: str | None = None,
    ) -> None:
        self.catalogue = catalogue
        self.model_name = model_name
        self.model_version = model_version
        self.max_history = max_history
        self.settings = settings
        self.revision = revision or settings.revision
        self.registered_version = registered_version
        self._pseudonymize = pseudonymize

    def prepare(self, body: Any, header_request_id: str | None = None) -> Plan:
        """Validate the request and build the model input with hyperrec.features (raises InvalidRequest)."""
        return self.plan(self.parse(body, header_request_id))

    def parse(self, body: Any, header_request_id: str | None = None) -> RecommendRequest:
        """Validate the request body (raises InvalidRequest); the same for every revision of one model."""
        return parse_request(
            body, settings=self.settings, pseudonymize=self._pseudonymize, model_name=self.model_name,
            header_request_id=header_request_id,
        )

    def plan(self, request: RecommendRequest, *, personalized: bool = True) -> Plan:
        """Map the request onto this bundle's catalogue and build the model input with hyperrec.features.

        ``personalized=False`` (no consent): the history and the user's segment are ignored, so the answer is
        the global popularity ranking.
        """
        if not personalized:
            request = replace(request, history=())
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
        segment = self.catalogue.user_segments.get(request.user) if personalized else None
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
            personalized=personalized,
        )

    def answer(
        self, plan: Plan, scores: np.ndarray | None, *, degraded_reason: str | None = None
    ) -> dict[str, Any]:
        """The JSON-ready response of ``respond`` (plain ranking)."""
        return self.respond(plan, scores, degraded_reason=degraded_reason).response

    def respond(
        self, plan: Plan, scores: np.ndarray | None, *, degraded_reason: str | None = None,
        bandit: BanditReranker | None = None, ranked: RankedItems | None = None,
    ) -> Answered:
        """Rank (or fall back to popularity), apply the rules, let the bandit choose the slate, explain.

        The bandit chooses among the ranker's top ``bandit.settings.top_n`` (after the rules), never for a
        degraded answer: a failure answers the plain popularity ranking. ``ranked``: the first items the
        rules rank from ``scores``, already computed (``hyperrec.online.topk_ranking.prefix_ranking``); used
        when it holds exactly the depth this answer needs.
        """
        k = plan.request.k
        use_bandit = bandit is not None and degraded_reason is None
        depth = max(k, bandit.settings.top_n) if use_bandit else k
        if scores is not None and ranked is not None and ranked.items.size == depth:
            source = "model"
        else:
            ranked_scores, mask, source = self._scores(plan, scores)
            ranked = top_k_diverse(ranked_scores, mask, depth, self.catalogue.category_codes,
                                   self.settings.max_per_category)
        candidates = None
        if use_bandit:
            slate, order = self._bandit_slate(plan, ranked, bandit)
            candidates = tuple(
                self.catalogue.item_ids[i] for i in ranked.items[: bandit.settings.top_n].tolist()
            )
        else:
            slate, order = self._plain_slate(plan, ranked), np.arange(ranked.items.size)
        shown = RankedItems(ranked.items[order], ranked.scores[order])
        return Answered(self._response(plan, shown, slate, source, degraded_reason), slate, candidates)

    def _scores(self, plan: Plan, scores: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, str]:
        cat, settings = self.catalogue, self.settings
        exclude = plan.history_idx if settings.exclude_seen else None
        if scores is not None:
            scores = np.asarray(scores, dtype=np.float64).reshape(-1)
            mask = eligible_mask(cat.n_items, scores, exclude=exclude, candidates=plan.candidate_idx)
            blended = blend_popularity(scores, cat.popularity, settings.popularity_weight, mask)
            if cat.cold_slot is not None:  # the same rule NextItemRecommender.score applies offline
                blended = reserve_cold_slot(blended, cat.cold_slot, mask, histories=[plan.history_idx])
            return blended, mask, "model"
        ranked_scores, source = popularity_scores(cat.popularity, cat.segment_popularity, plan.segment)
        mask = eligible_mask(cat.n_items, ranked_scores, exclude=exclude, candidates=plan.candidate_idx)
        return ranked_scores, mask, source

    def _plain_slate(self, plan: Plan, ranked: RankedItems) -> Slate:
        n = int(ranked.items.size)
        return Slate(
            items=tuple(self.catalogue.item_ids[i] for i in ranked.items.tolist()), propensities=(1.0,) * n,
            policy=RANKER_POLICY, degraded=False, reason=None, propensity_method="deterministic",
            ranker_ranks=tuple(range(n)), item_features=((),) * n, context=plan.context,
        )

    def _bandit_slate(
        self, plan: Plan, ranked: RankedItems, bandit: BanditReranker
    ) -> tuple[Slate, np.ndarray]:
        """The bandit's slate of the ranked candidates and the candidate indices it shows, in order."""
        cat = self.catalogue
        candidates = Candidates(tuple(cat.item_ids[i] for i in ranked.items.tolist()), ranked.scores,
                                np.asarray(cat.popularity, dtype=np.float64)[ranked.items])
        slate = bandit.rerank(candidates, plan.context, plan.request.k)
        return slate, np.array(slate.ranker_ranks, dtype=np.int64)

    def _response(self, plan: Plan, shown: RankedItems, slate: Slate, source: str,
                  degraded_reason: str | None) -> dict[str, Any]:
        cat, request = self.catalogue, plan.request
        reasons = (
            explain(cat, shown.items, plan.history_idx, self.settings.explain_top_n)
            if request.explain
            else None
        )
        recommendations = []
        for position, (item, score) in enumerate(zip(shown.items.tolist(), shown.scores.tolist())):
            entry: dict[str, Any] = {
                "rank": position + 1,
                "item_id": cat.item_ids[item],
                "title": cat.titles[item],
                "categories": list(cat.categories[item]),
                "score": round(float(score), 6),
                "propensity": slate.propensities[position],
            }
            if reasons is not None:
                entry["because"] = [
                    {
                        "item_id": cat.item_ids[b.item_idx],
                        "title": cat.titles[b.item_idx],
                        "similarity": b.similarity,
                    }
                    for b in reasons[position]
                ]
            recommendations.append(entry)
        response: dict[str, Any] = {
            "request_id": request.request_id,
            "model": self._identity,
            "revision": self.revision,
            "policy": {"name": slate.policy, "propensity_method": slate.propensity_method,
                       "plain_ranking_because": slate.reason},
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

    @property
    def _identity(self) -> dict[str, Any]:
        """Model name and bundle version, and the registry version when it is known."""
        identity: dict[str, Any] = {"name": self.model_name, "version": self.model_version}
        if self.registered_version is not None:
            identity["registered_version"] = self.registered_version
        return identity

    def describe(self) -> Mapping[str, Any]:
        """Model identity for logs and health answers (no user data)."""
        return {"model": self.model_name, "version": self.model_version, "revision": self.revision,
                "n_items": self.catalogue.n_items}

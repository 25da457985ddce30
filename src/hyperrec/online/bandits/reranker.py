"""``BanditReranker``: what the transformer calls to choose the shown slate and to learn from feedback.

Wiring (postprocess): rank as today, keep the top ``bandit.top_n`` as ``Candidates`` (ranker order), call
``rerank(candidates, context, k)`` and answer ``slate.items`` in order. Log ``slate.served(request_id)``
with the answer. When feedback arrives, join it to the served slate by request id and call ``update`` with
one ``Impression`` per shown item (clicked or not): ``Impression.from_served``.

Safety: ``rerank`` never raises because of the state. A store that fails (Redis down, killed, a timeout),
a state not updated for ``staleness_s``, or a state whose layout does not fit the settings gives the plain
ranking with ``degraded=True`` and the reason; after a store failure the store is left alone for
``unavailable_backoff_s`` so that requests do not queue on a dead server. ``update`` never raises either: a
failed write (or one skipped during the back-off) is logged and reported as ``False``; those impressions
are lost to the policy, which only slows its learning.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from hyperrec.online.bandits.context import (
    CANDIDATE_FEATURES,
    BanditContext,
    Candidates,
    candidate_features,
    linucb_features,
)
from hyperrec.online.bandits.feedback import Impression, ServedItem, reward_of
from hyperrec.online.bandits.policies import (
    LINUCB_A,
    LINUCB_B,
    TOTAL_KEY,
    Policy,
    SlateRequest,
    item_key,
    make_policy,
    rank_key,
    request_features,
    user_item_key,
)
from hyperrec.online.bandits.settings import BanditConfig
from hyperrec.online.bandits.slates import outsider_cap
from hyperrec.online.bandits.state import PolicyStore, StateDelta, StoreUnavailable

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Slate:
    """The shown items, best first, with P(item at its position) under the policy that chose them."""

    items: tuple[str, ...]
    propensities: tuple[float, ...]
    policy: str
    degraded: bool
    #: Why the plain ranking was served instead (state_unavailable, stale, ...); None when not degraded.
    reason: str | None
    #: deterministic | exact | monte_carlo
    propensity_method: str
    #: Ranker rank (candidate index) of each shown item.
    ranker_ranks: tuple[int, ...]
    #: candidate_features rows of the shown items, kept for the LinUCB update.
    item_features: tuple[tuple[float, ...], ...]
    context: BanditContext

    def served(self, request_id: str) -> list[ServedItem]:
        """What to log with the answer: one record per shown item, joined later with the feedback."""
        return [
            ServedItem(request_id=request_id, policy=self.policy, item_id=item, position=position,
                       ranker_rank=rank, propensity=propensity, segment=self.context.segment,
                       history_length=self.context.history_length, item_features=features,
                       user=self.context.user)
            for position, (item, propensity, rank, features) in enumerate(
                zip(self.items, self.propensities, self.ranker_ranks, self.item_features))
        ]


class BanditReranker:
    """Chooses slates among the ranker's top N and learns from impressions; shared state in ``store``."""

    def __init__(
        self,
        settings: BanditConfig,
        store: PolicyStore,
        *,
        policy: Policy | None = None,
        clock: Callable[[], float] = time.time,
        rng: np.random.Generator | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.policy = policy or make_policy(settings.policy if settings.enabled else "greedy", settings)
        self._clock = clock
        self._rng = rng or np.random.default_rng(settings.seed)
        self._retry_at = 0.0
        try:
            store.touch(settings.namespace, clock())
        except StoreUnavailable as exc:
            self._store_failed(exc)

    def rerank(self, candidates: Candidates, context: BanditContext, k: int) -> Slate:
        """The slate of ``k`` items for one request (at most k; fewer when fewer candidates)."""
        candidates = candidates.head(self.settings.top_n)
        k = min(k, len(candidates))
        if self.policy.name == "greedy" or k == 0 or k == len(candidates):
            return self._plain(candidates, context, k, reason=None)
        if self._clock() < self._retry_at:
            return self._plain(candidates, context, k, reason="state_unavailable")
        try:
            keys = self.policy.keys(candidates, context)
            snapshot = self.store.read(self.settings.namespace, keys, self.policy.arrays)
            if self._stale(snapshot.updated_at):
                return self._plain(candidates, context, k, reason="stale_state")
            request = SlateRequest(
                candidates, context, k, outsider_cap(k, self.settings.budget, len(candidates))
            )
            choice = self.policy.choose(request, snapshot, self._rng)
        except StoreUnavailable as exc:
            self._store_failed(exc)
            return self._plain(candidates, context, k, reason="state_unavailable")
        features = request_features(request, snapshot)
        slate = [int(j) for j in choice.slate]
        return Slate(
            items=tuple(candidates.item_ids[j] for j in slate),
            propensities=tuple(float(p) for p in choice.propensities),
            policy=self.policy.name, degraded=False, reason=None, propensity_method=choice.method,
            ranker_ranks=tuple(slate), item_features=tuple(tuple(features[j].tolist()) for j in slate),
            context=context,
        )

    def update(self, impressions: Sequence[Impression]) -> bool:
        """Add the impressions' rewards to the shared state in one atomic step; False when the store
        failed."""
        return self._apply(impressions, shown=True)

    def reward(self, impressions: Sequence[Impression]) -> bool:
        """Add only the rewards of impressions already counted by ``update`` (a click that arrives after the
        transformer recorded the shown slate with ``clicked=False``); False when the store failed."""
        return self._apply(impressions, shown=False)

    def _apply(self, impressions: Sequence[Impression], *, shown: bool) -> bool:
        if not impressions:
            return True
        if self._clock() < self._retry_at:
            return False
        delta = self.delta(impressions, shown=shown)
        try:
            self.store.add(self.settings.namespace, delta)
        except StoreUnavailable as exc:
            self._store_failed(exc)
            return False
        return True

    def delta(self, impressions: Sequence[Impression], *, shown: bool = True) -> StateDelta:
        """Counts per item, per ranker rank, per (user, item) and in total, and the LinUCB sums x xᵀ and r x.

        ``shown=False``: rewards only (impression counts and x xᵀ were added when the slate was served).
        """
        settings = self.settings
        delta = StateDelta(updated_at=self._clock())
        rewards = np.array([reward_of(imp, settings.reward, settings.dwell_full_s) for imp in impressions])
        n = 1.0 if shown else 0.0
        rows = []
        for imp, reward in zip(impressions, rewards):
            delta.add_stat(item_key(imp.item_id), n, float(reward))
            delta.add_stat(rank_key(imp.ranker_rank), n, float(reward))
            if imp.user is not None:
                delta.add_stat(user_item_key(imp.user, imp.item_id), n, float(reward))
            context = BanditContext(imp.segment, imp.history_length, imp.user)
            rows.append(linucb_features(context, np.array([imp.item_features]), segments=settings.segments,
                                        max_history=settings.max_history)[0])
        delta.add_stat(TOTAL_KEY, n * len(impressions), float(rewards.sum()))
        x = np.array(rows)
        if shown:
            delta.add_array(LINUCB_A, x.T @ x)
        delta.add_array(LINUCB_B, x.T @ rewards)
        return delta

    def _stale(self, updated_at: float | None) -> bool:
        limit = self.settings.staleness_s
        return limit is not None and (updated_at is None or self._clock() - updated_at > limit)

    def _store_failed(self, exc: StoreUnavailable) -> None:
        logger.warning("bandit state unavailable, serving the plain ranking: %s", exc)
        self._retry_at = self._clock() + self.settings.unavailable_backoff_s

    def _plain(self, candidates: Candidates, context: BanditContext, k: int, *, reason: str | None) -> Slate:
        """The ranker's top k; the user-count features are 0 here (the state was not read)."""
        features = (
            candidate_features(candidates) if len(candidates) else np.zeros((0, len(CANDIDATE_FEATURES)))
        )
        return Slate(
            items=tuple(candidates.item_ids[:k]), propensities=(1.0,) * k, policy=self.policy.name,
            degraded=reason is not None, reason=reason, propensity_method="deterministic",
            ranker_ranks=tuple(range(k)), item_features=tuple(tuple(row.tolist()) for row in features[:k]),
            context=context,
        )

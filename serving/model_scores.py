"""The transformer's predictor call: the in-graph top k when it decides the answer, the full scores otherwise.

Asking for K (item, score) pairs instead of n_items scores is most of the saving on the served path (issue
11): the predictor serialises 2·K numbers (plus the best cold item in a bundle with a cold slot) instead of
9,742, and the transformer parses and ranks K. The answer stays
the one the full vector gives (``hyperrec.online.topk_ranking``); when the prefix cannot decide it (a
candidate list, a popularity blend, a diversity cap the prefix cannot fill), the full scores are fetched as
before. When it decides, its ranking (``prefix_ranking``: the first ``depth`` items after the rules) comes
back with the scores, and the answer is built from it without running the rules again over the catalogue.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from hyperrec.online.bandits.reranker import BanditReranker
from hyperrec.online.ranking import RankedItems
from hyperrec.online.service import Plan
from hyperrec.online.topk_ranking import prefix_ranking, sparse_scores, top_k_applies

from .metrics import RevisionSeries
from .revisions import Revision

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelScores:
    """Catalogue-wide scores of one request (−inf outside the top k when the prefix decided), and the ranking
    the prefix decided (None: the caller ranks ``scores``)."""

    scores: np.ndarray
    ranked: RankedItems | None = None


def ranking_depth(plan: Plan, bandit: BanditReranker | None) -> int:
    """How many ranked items the answer needs: k, or the bandit's candidate pool when it chooses the slate."""
    return max(plan.request.k, bandit.settings.top_n) if bandit is not None else plan.request.k


async def model_scores(revision: Revision, plan: Plan, bandit: BanditReranker | None,
                       series: RevisionSeries) -> ModelScores:
    """The model's scores for ``plan``'s single row, with the ranking of the top k when that decides the
    answer."""
    scorer, service = revision.scorer, revision.service
    request_id = plan.request.request_id
    k = getattr(scorer, "k", None)
    depth = ranking_depth(plan, bandit)
    path = "full"
    catalogue = service.catalogue
    slot = catalogue.cold_slot
    if k and top_k_applies(service.settings, has_candidates=plan.candidate_idx is not None, depth=depth, k=k,
                           has_cold_slot=slot is not None and slot.items.size > 0,
                           has_cold_outputs=bool(getattr(scorer, "cold_outputs", False))):
        top = (await scorer.top_k(plan.model_inputs, request_id)).row(0)
        if top.ids.size >= catalogue.n_items:  # the prefix is the whole vector: rank it as such
            series.score_path["top_k"].inc()
            return ModelScores(sparse_scores(catalogue.n_items, top))
        ranked = prefix_ranking(top, plan.history_idx, catalogue, service.settings, depth=depth)
        if ranked is not None:
            series.score_path["top_k"].inc()
            return ModelScores(sparse_scores(catalogue.n_items, top), ranked)
        path = "top_k_then_full"
        logger.debug(
            "request %s: the top %d cannot decide %d items; fetching all scores", request_id, k, depth
        )
    series.score_path[path].inc()
    return ModelScores((await scorer.score(plan.model_inputs, request_id))[0])

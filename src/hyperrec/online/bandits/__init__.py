"""Bandits over the ranker's top-N candidates: policies, shared state, simulator and off-policy estimates.

- ``reranker.BanditReranker``: ``rerank(candidates, context, k) -> Slate``, ``update(impressions)``;
- ``policies``: greedy, epsilon-greedy, UCB1, Thompson sampling, LinUCB (and a uniform reference);
- ``state`` / ``sqlite_store`` / ``redis_store`` / ``stores.open_store``: the shared policy state;
- ``simulator`` / ``simdata``: ml-latest-small users' future ratings decide clicks;
- ``ope``: IPS and SNIPS from a logged file with propensities.

Nothing here imports KServe or KFP.
"""

"""Online experiments: the canary controller and A/B tests, free of KFP and KServe imports.

- ``power``: sample sizes for a baseline CTR and a minimum detectable effect (``hyperrec ab plan``);
- ``sequential``: the mixture sequential probability ratio test (always-valid p-values and intervals), valid
  however often the controller looks, and its power analysis;
- ``guardrails``: hard limits on a revision's error rate, p99 latency and degraded ratio;
- ``evidence``: what one controller step reads (per-revision serving metrics, cumulative CTR counts);
- ``prometheus``: those serving metrics through PromQL over Prometheus' HTTP API;
- ``ctr``: per-revision impressions and clicks from the feedback log;
- ``controller``: the canary state machine (traffic steps, promote / hold / roll back);
- ``actions``: what a decision does to the InferenceService(s) and the MLflow aliases;
- ``decisions``: the JSONL + MLflow record of every decision with its evidence;
- ``simulation``: canaries simulated step by step (better, worse, equal, failing challengers);
- ``ab``: ``hyperrec ab analyze`` (per-variant CTR, sequential verdict, sample-ratio mismatch, stickiness);
- ``settings``: ``CanaryConfig`` (``HyperrecConfig.canary``); ``cli``: ``hyperrec canary`` and
  ``hyperrec ab``.
"""

"""Kubeflow Pipelines components: one folder a step, each a thin adapter over ``hyperrec`` functions.

The component body only parses the config, calls ``hyperrec.steps`` and copies a few numbers into KFP
outputs; everything testable lives in the core library.
"""

#: Image every component runs in on a cluster; pipelines override it from ``cluster.image``.
DEFAULT_IMAGE = "ghcr.io/hyperrec/hyperrec:0.1.0"

"""Kubeflow Pipelines components: one folder a step, each a thin adapter over ``hyperrec`` functions.

The component body only parses the config, calls ``hyperrec.steps`` and copies a few numbers into KFP
outputs; everything testable lives in the core library.
"""

from hyperrec.cluster_settings import COMPONENTS_IMAGE

#: Image every component runs in on a cluster (the default of ``cluster.image``, which pipelines apply).
DEFAULT_IMAGE = COMPONENTS_IMAGE

"""The pipeline steps as plain functions, one module per step: the CLI, the KFP components and kfp.local call
these.

Each step reads its inputs from folders, writes its outputs to folders, and records itself in MLflow, so the
same code runs as a kfp.local subprocess, as a pod on a cluster, or straight from ``hyperrec <step>``.
Layers: core packages (data, models, modeling, evaluation, export, monitoring, registry) <- steps <- adapters
(components, pipelines, CLI, serving). A step imports core only; nothing in core imports a step.

Import a step from its module (``hyperrec.steps.fine_tune``): importing this package stays light. The four
offline steps are also importable from here for ``hyperrec.benchmarks.quality``.
"""

from hyperrec.steps.baselines import train_baselines_step
from hyperrec.steps.data_prep import data_prep_step
from hyperrec.steps.evaluate import evaluate_step
from hyperrec.steps.fine_tune import fine_tune_step

__all__ = ["data_prep_step", "evaluate_step", "fine_tune_step", "train_baselines_step"]

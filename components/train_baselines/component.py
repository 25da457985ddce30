"""Fit the classical recommenders every learned model must beat."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from hyperrec.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def train_baselines(config_yaml: str, pipeline_run: str, prepared: Input[Dataset], models: Output[Model]):
    """Fit popularity, item-kNN, ALS and BPR on the train split; one sub-folder per model."""
    from pathlib import Path

    from hyperrec.config import config_from_yaml
    from hyperrec.logs import configure_logging
    from hyperrec.steps.baselines import train_baselines_step

    configure_logging()
    train_baselines_step(config_from_yaml(config_yaml), pipeline_run, Path(prepared.path), Path(models.path))

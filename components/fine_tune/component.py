"""Fine-tune the language-model recommenders on the GPU node pool (CPU when run embedded)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from hyperrec.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def fine_tune(config_yaml: str, pipeline_run: str, prepared: Input[Dataset], models: Output[Model]):
    """Train every model of ``modeling.train``; one sub-folder per model."""
    from pathlib import Path

    from hyperrec.config import config_from_yaml
    from hyperrec.logs import configure_logging
    from hyperrec.steps.fine_tune import fine_tune_step

    configure_logging()
    fine_tune_step(config_from_yaml(config_yaml), pipeline_run, Path(prepared.path), Path(models.path))

"""Export the served model to ONNX and a Triton model repository (the serving bundle)."""

from kfp import dsl
from kfp.dsl import Dataset, Input, Model, Output

from hyperrec.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def export(config_yaml: str, pipeline_run: str, prepared: Input[Dataset], models: Input[Model],
           bundle: Output[Model]):
    """Write the serving bundle of ``modeling.serve`` (ONNX checked against torch, Triton configs validated).

    Args:
        config_yaml: the full HyperrecConfig as YAML or JSON.
        pipeline_run: the pipeline run id; also the bundle's version.
        prepared: the prepared-data folder.
        models: the language models' folder.
        bundle: the serving bundle (output).
    """
    from pathlib import Path

    from hyperrec.config import config_from_yaml
    from hyperrec.logs import configure_logging
    from hyperrec.steps.export import export_step

    configure_logging()
    export_step(config_from_yaml(config_yaml), pipeline_run, Path(prepared.path), Path(models.path),
                Path(bundle.path))

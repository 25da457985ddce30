"""Gate the challenger on the evaluation results; register its serving bundle in MLflow only if it passes."""

from typing import NamedTuple

from kfp import dsl
from kfp.dsl import Artifact, Input

from hyperrec.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def validate_and_register(
    config_yaml: str,
    pipeline_run: str,
    evaluation: Input[Artifact],
    bundle: Input[Artifact],
    challenger: str = "",
    registered_name: str = "hyperrec-ranker",
    min_improvement: float = 0.0,
) -> NamedTuple("GateOutputs", [("registration", str), ("registered", bool)]):
    """Compare ``challenger`` with every baseline and the champion on ``evaluation.gate_metric``.

    Passes: the bundle becomes a new version of ``registered_name`` with alias ``challenger``. Fails:
    nothing is registered and the task still succeeds. Outputs ``registration``, the step result as JSON
    (decision, registered version or null), and ``registered``, whether a version was registered (what a
    pipeline's ``dsl.If`` can test); see components/validate_and_register/README.md. ``challenger`` "" means:
    the bundle's model name if metrics.json has it, else the best learned model.

    Args:
        config_yaml: the full HyperrecConfig as YAML or JSON.
        pipeline_run: the pipeline run id, tagged on the MLflow run and the version.
        evaluation: the evaluation folder (metrics.json, fairness.json).
        bundle: the serving bundle.
        challenger: the metrics.json model the bundle was exported from; "" to infer it.
        registered_name: the registered model that gets the new version.
        min_improvement: the lead the challenger needs over every opponent.

    Returns:
        ``registration`` (the step result as JSON) and ``registered`` (whether a version was registered).
    """
    import json
    from collections import namedtuple
    from pathlib import Path

    from hyperrec.config import config_from_yaml
    from hyperrec.logs import configure_logging
    from hyperrec.steps.validate_and_register import validate_and_register_step

    configure_logging()
    result = validate_and_register_step(
        config_from_yaml(config_yaml),
        pipeline_run,
        Path(evaluation.path),
        Path(bundle.path),
        challenger or None,
        registered_name=registered_name,
        min_improvement=min_improvement,
    )
    outputs = namedtuple("GateOutputs", ["registration", "registered"])
    return outputs(json.dumps(result, sort_keys=True), result["registered"] is not None)

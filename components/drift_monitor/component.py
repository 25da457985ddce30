"""Compare the champion's training interactions with recent events; tell dsl.If whether to retrain."""

from kfp import dsl
from kfp.dsl import HTML, Artifact, Dataset, Input, Output

from hyperrec.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def drift_monitor(
    config_yaml: str,
    pipeline_run: str,
    reference: Input[Dataset],
    current: Input[Dataset],
    report: Output[HTML],
    summary: Output[Artifact],
    force_retrain: bool = False,
) -> bool:
    """Write the Evidently drift report (HTML) and the JSON summary; return whether to retrain.

    The return value is the single ``Output`` (kfp.local resolves only that name in a ``dsl.If``): drift
    detected, or ``force_retrain``. The summary keeps ``drift_detected`` itself.

    Args:
        config_yaml: the full HyperrecConfig as YAML or JSON (``monitoring.*``, ``tracking.*``).
        pipeline_run: the pipeline run id, tagged on the MLflow run.
        reference: the reference events (file or folder).
        current: the current events (file or folder).
        report: the HTML drift report (output).
        summary: the JSON drift summary (output).
        force_retrain: retrain whatever the drift check finds.

    Returns:
        Whether to retrain.
    """
    from pathlib import Path

    from hyperrec.config import config_from_yaml
    from hyperrec.logs import configure_logging
    from hyperrec.steps.drift import drift_monitor_step

    configure_logging()
    result = drift_monitor_step(
        config_from_yaml(config_yaml), pipeline_run, Path(reference.path), Path(current.path),
        Path(report.path), Path(summary.path), force_retrain=force_retrain,
    )
    return result.drift_detected or force_retrain

"""Compare the champion's training interactions with recent events; report drift for dsl.If."""

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
) -> bool:
    """Write the Evidently drift report (HTML) and the JSON summary; return drift_detected."""
    from pathlib import Path

    from hyperrec.config import config_from_yaml
    from hyperrec.logs import configure_logging
    from hyperrec.monitoring.step import drift_monitor_step

    configure_logging()
    result = drift_monitor_step(
        config_from_yaml(config_yaml), pipeline_run, Path(reference.path), Path(current.path),
        Path(report.path), Path(summary.path),
    )
    return result.drift_detected

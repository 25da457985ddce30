"""Validate, clean, pseudonymize, split and segment the raw interactions."""

from kfp import dsl
from kfp.dsl import Dataset, Markdown, Output

from hyperrec.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def data_prep(config_yaml: str, pipeline_run: str, prepared: Output[Dataset], report: Output[Markdown],
              data_window: str = "{}"):
    """Write the prepared-data folder (see hyperrec.data.prepared) and its Markdown data report.

    ``data_window`` (JSON ``{"start_unix", "end_unix"}``) restricts the events to a time window (retraining).

    Args:
        config_yaml: the full HyperrecConfig as YAML or JSON.
        pipeline_run: the pipeline run id, tagged on the MLflow run.
        prepared: the prepared-data folder (output).
        report: the Markdown data report (output).
        data_window: the event time window as JSON; "{}" keeps every event.
    """
    import shutil
    from pathlib import Path

    from hyperrec.config import config_from_yaml
    from hyperrec.data.prepared import REPORT_MD
    from hyperrec.logs import configure_logging
    from hyperrec.steps.data_prep import data_prep_step, with_data_window

    configure_logging()
    cfg = with_data_window(config_from_yaml(config_yaml), data_window)
    data_prep_step(cfg, pipeline_run, Path(prepared.path))
    shutil.copyfile(Path(prepared.path) / REPORT_MD, report.path)

"""The retraining pipeline: drift check → (if drift, or ``force_retrain``) data prep on the new window →
fine-tuning warm-started from the champion → evaluation → gate against the champion and the baselines →
register the challenger.

The drift trigger (hyperrec.monitoring.trigger) starts it with ``pipeline_run``, ``data_window`` (JSON
``{"start_unix", "end_unix"}``), ``trigger_reason``, ``config_yaml``, ``force_retrain=True`` (it has decided)
and the object-store URIs ``reference_uri`` / ``current_uri`` its importers download; the weekly recurring run
sends ``force_retrain=True`` and the URIs. ``modeling.warm_start_dir`` in the config names the champion's
language-model folder. ``pipelines/contract.py`` checks run bodies against the compiled form of this
signature.
"""

from kfp import dsl
from kfp.dsl import Dataset

from hyperrec.components.drift_monitor import drift_monitor
from hyperrec.config import HyperrecConfig
from hyperrec.pipelines.training.pipeline import on_cluster, train_and_register

PIPELINE_NAME = "hyperrec-retraining"


def build_retraining_pipeline(cfg: HyperrecConfig):
    """Return the pipeline function; the drift sources default to ``monitoring.sources`` of ``cfg``.

    Args:
        cfg: the configuration; its JSON is the ``config_yaml`` default, and it sets images and scheduling.
    """
    reference_default = str(cfg.monitoring.sources.reference or "")

    @dsl.pipeline(
        name=PIPELINE_NAME,
        description="Retrain on a new window when drift is detected or retraining is forced.",
    )
    def retraining(
        config_yaml: str = cfg.to_json(),
        pipeline_run: str = "manual",
        reference_uri: str = reference_default,
        current_uri: str = "",
        data_window: str = "{}",
        trigger_reason: str = "manual",
        force_retrain: bool = False,
    ):
        """Check drift between the two imported windows; retrain and register when it says so.

        Args:
            config_yaml: the full HyperrecConfig as YAML or JSON.
            pipeline_run: the pipeline run id.
            reference_uri: the reference events' URI.
            current_uri: the current events' URI.
            data_window: the event time window for data prep, as JSON.
            trigger_reason: why the run was started (recorded with the run's parameters).
            force_retrain: retrain whatever the drift check finds.
        """
        reference = dsl.importer(artifact_uri=reference_uri, artifact_class=Dataset, reimport=True)
        current = dsl.importer(artifact_uri=current_uri, artifact_class=Dataset, reimport=True)
        drift = on_cluster(
            drift_monitor(config_yaml=config_yaml, pipeline_run=pipeline_run, reference=reference.output,
                          current=current.output, force_retrain=force_retrain),
            cfg,
        ).set_display_name("drift check")
        with dsl.If(drift.outputs["Output"] == True, name="retrain"):  # noqa: E712 - KFP syntax
            train_and_register(
                cfg, config_yaml=config_yaml, pipeline_run=pipeline_run, data_window=data_window
            )

    return retraining

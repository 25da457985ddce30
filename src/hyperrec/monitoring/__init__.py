"""Drift monitoring and the retraining trigger (docs/MONITORING.md).

- ``hyperrec.monitoring.settings``: ``MonitoringConfig`` (mounted as ``HyperrecConfig.monitoring``).
- ``hyperrec.monitoring.events``: interaction files, prepared folders and the serving feedback log as one
  frame.
- ``hyperrec.monitoring.drift``: ``run_drift_check`` (Evidently), a loop over the checks of ``checks`` (what
  each compares: ``verdicts``), whose effects ``significance`` tests against sampling noise ->
  ``results.DriftResult`` (JSON summary; the HTML page is ``report``).
- ``hyperrec.monitoring.trigger``: ``RetrainTrigger`` with KFP / local launchers and the decision log.
- The ``hyperrec drift`` command is an adapter, ``hyperrec.pipelines.drift_cli``: with ``--trigger`` it starts
  the embedded training pipeline, which this package must not import.

Submodules import Evidently, MLflow and KFP; import them where needed, not from here.
"""

from hyperrec.monitoring.settings import MonitoringConfig

__all__ = ["MonitoringConfig"]

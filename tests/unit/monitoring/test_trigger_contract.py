"""Trigger vs pipeline: every run the drift trigger starts fits the compiled retraining pipeline.

The other side is the real artifact: ``hyperrec-retraining`` compiled by kfp's compiler, read by
``PipelineContract``. The runs go through the real ``KfpLauncher`` into ``FakeKfpClient``, whose client half
is kfp's own job-config code and whose server half rejects any body that does not fit the IR.
"""

import pytest
from fake_kfp import FakeKfpClient
from monitoring_helpers import KFP_UPLOADED, drift_summary

from hyperrec.config import HyperrecConfig
from hyperrec.monitoring.launchers import KfpLauncher
from hyperrec.monitoring.settings import MonitoringConfig
from hyperrec.monitoring.trigger import TRIGGERED, RetrainTrigger
from hyperrec.pipelines.contract import PipelineContract

URIS = {key: KFP_UPLOADED[key] for key in ("reference_uri", "current_uri")}


def launch_on_drift_and_on_quality(tmp_path, kfp: dict, client: FakeKfpClient) -> list:
    cfg = MonitoringConfig.model_validate({"trigger": {"kfp": {"host": "http://kfp.example", **kfp},
                                                       "cooldown_seconds": 0, "debounce": False}})
    trigger = RetrainTrigger(cfg, KfpLauncher(client, cfg.trigger.kfp), decision_log=tmp_path / "d.jsonl",
                             sleep=lambda s: None, config_yaml=HyperrecConfig().to_json())
    return [trigger.decide(drift_summary()), trigger.decide(drift_summary(drift=False, ctr=0.004))]


@pytest.mark.parametrize("pipeline", ["compiled package", "uploaded version"])
def test_every_run_the_trigger_starts_fits_the_compiled_retraining_pipeline(retraining_package, kfp_client,
                                                                          tmp_path, pipeline):
    if pipeline == "compiled package":
        kfp, client = {"pipeline_package": str(retraining_package), **URIS}, FakeKfpClient()
    else:
        kfp, client = KFP_UPLOADED, kfp_client()
    decisions = launch_on_drift_and_on_quality(tmp_path, kfp, client)
    assert [d.decision for d in decisions] == [TRIGGERED, TRIGGERED], [d.errors for d in decisions]
    contract = PipelineContract.from_file(retraining_package)
    for run in client.runs:
        assert contract.violations(run["params"]) == []
        assert {k: run["params"][k] for k in URIS} == URIS
        # The trigger has decided: the pipeline's drift check must not veto a quality-triggered run.
        assert run["params"]["force_retrain"] is True


def test_the_trigger_sends_every_input_of_the_retraining_pipeline(retraining_package):
    inputs = set(PipelineContract.from_file(retraining_package).inputs)
    assert inputs == {"config_yaml", "pipeline_run", "reference_uri", "current_uri", "data_window",
                      "trigger_reason", "force_retrain"}

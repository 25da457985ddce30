"""Audit entries say who ran what, without secrets or raw user ids, locally and on the MLflow run."""

import json

from hyperrec.config import load_config
from hyperrec.data.ledger import AUDIT_LOG, state_dir
from hyperrec.privacy.audit import REDACTED, redact


def test_secrets_and_raw_user_ids_are_redacted_everything_else_kept():
    args = ["forget", "--user-id", "alice", "--user-id=bob", "--set", "privacy.erasure_token=abc",
            "--token", "xyz", "--set", "prep.min_rating=4", "--config", "c.yaml"]
    assert redact(args) == [
        "forget",
        "--user-id",
        REDACTED,
        f"--user-id={REDACTED}",
        "--set",
        f"privacy.erasure_token={REDACTED}",
        "--token",
        REDACTED,
        "--set",
        "prep.min_rating=4",
        "--config",
        "c.yaml",
    ]


def test_a_pipeline_step_is_audited_in_the_local_log_and_on_its_mlflow_run(tmp_path, monkeypatch):
    import mlflow

    from hyperrec import tracking

    monkeypatch.setenv("USER", "auditor")
    monkeypatch.setenv("LOGNAME", "auditor")
    cfg = load_config(overrides=[f"output_dir={tmp_path / 'outputs' / 'latest'}"], environ={})
    with tracking.step_run(cfg, "data_prep", "run-7") as run:
        run_id = run.info.run_id
    entries = [json.loads(line) for line in (state_dir(cfg) / AUDIT_LOG).read_text().splitlines()]
    assert entries[-1]["kind"] == "step" and entries[-1]["command"] == "data_prep"
    assert entries[-1]["user"] == "auditor" and entries[-1]["pipeline_run"] == "run-7"
    tags = mlflow.get_run(run_id).data.tags
    assert tags["hyperrec.audit.user"] == "auditor" and tags["hyperrec.audit.command"] == "data_prep"
    local = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="audit/entry.json",
                                                dst_path=str(tmp_path / "dl"))
    assert json.loads(open(local).read())["pipeline_run"] == "run-7"


def test_audit_can_be_switched_off(tmp_path):
    from hyperrec import tracking

    cfg = load_config(
        overrides=[f"output_dir={tmp_path / 'outputs' / 'latest'}", "privacy.audit=false"], environ={}
    )
    with tracking.step_run(cfg, "evaluate", "run-8"):
        pass
    assert not (state_dir(cfg) / AUDIT_LOG).exists()

"""Schedules: the weekly recurring run and the hourly drift CronJob start runs that really retrain.

The other side is the compiled retraining pipeline. The recurring run is the KFP API body in
manifests/components/monitoring/kfp-recurring-run.yaml; the CronJob's command is run here as its pod would run
it (its mounts mapped into tmp_path, the config from manifests/base/config.yaml plus the cluster settings that
docs/MONITORING.md tells a platform engineer to add), with FakeKfpClient in place of kfp.Client.
"""

import json
import re
from pathlib import Path
from string import Template

import pandas as pd
import pytest
import yaml
from monitoring_helpers import KFP_UPLOADED, START, feedback_records, synthetic_events

from hyperrec.cli import main
from hyperrec.monitoring.events import read_events, select_window
from hyperrec.monitoring.settings import is_kfp_importable
from hyperrec.pipelines.contract import PipelineContract

REPO = Path(__file__).resolve().parents[3]
MONITORING = REPO / "manifests" / "components" / "monitoring"
URIS = {"REFERENCE_URI": KFP_UPLOADED["reference_uri"], "CURRENT_URI": KFP_UPLOADED["current_uri"]}
IDS = {"PIPELINE_ID": "p", "PIPELINE_VERSION_ID": "v", "EXPERIMENT_ID": "e"}


def recurring_parameters(substitutes: dict[str, str]) -> dict:
    text = Template((MONITORING / "kfp-recurring-run.yaml").read_text()).substitute(substitutes)
    return yaml.safe_load(text)["runtime_config"]["parameters"]


def test_the_weekly_recurring_run_fits_the_pipeline_and_retrains_regardless_of_drift(retraining_package):
    contract = PipelineContract.from_file(retraining_package)
    parameters = recurring_parameters({**IDS, **URIS})
    assert contract.violations(parameters) == []
    assert parameters["force_retrain"] is True
    assert {parameters["reference_uri"], parameters["current_uri"]} == set(URIS.values())


@pytest.mark.parametrize("value", ["", "${CURRENT_URI}"], ids=["unset variable", "not substituted"])
def test_a_recurring_run_applied_without_its_uris_is_rejected(retraining_package, value):
    parameters = recurring_parameters({**IDS, **URIS, "CURRENT_URI": value})
    problems = PipelineContract.from_file(retraining_package).violations(parameters)
    assert problems and all("current_uri" in problem for problem in problems)


def test_the_docs_say_what_the_schedules_do():
    doc = (REPO / "docs" / "MONITORING.md").read_text()
    schedules = doc[doc.index("## Schedules"):]
    for key in ("force_retrain", "monitoring.trigger.kfp.reference_uri", "monitoring.trigger.kfp.current_uri",
                "${REFERENCE_URI}", "${CURRENT_URI}", "pipeline_version_id"):
        assert key in schedules, key


# -- the hourly CronJob ------------------------------------------------------------------------------------------


def cluster_settings(tmp_path: Path, reference: str | None = None, **kfp) -> dict:
    """What docs/MONITORING.md ("Schedules") tells the platform engineer to set in the mounted config; the
    reference is a local file unless ``reference`` names a URI."""
    if reference is None:
        reference = str(tmp_path / "reference.parquet")
        synthetic_events(200, seed=1).to_parquet(reference)
    return {
        "output_dir": str(tmp_path / "outputs"),
        "tracking": {"tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}"},
        "monitoring": {"sources": {"reference": reference}, "windows": {"current_days": 7},
                       "trigger": {"kfp": kfp}},
    }


def run_cronjob_command(tmp_path: Path, settings: dict, monkeypatch, client) -> tuple[int, list[str]]:
    """The CronJob's container command, with each mounted path mapped to a folder under tmp_path."""
    pod = yaml.safe_load((MONITORING / "cronjob.yaml").read_text())["spec"]["jobTemplate"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    mounts = {m["mountPath"]: tmp_path / "pod" / m["name"] for m in container["volumeMounts"]}
    config = yaml.safe_load((REPO / "manifests" / "base" / "config.yaml").read_text())
    mounts["/etc/hyperrec"].mkdir(parents=True)
    (mounts["/etc/hyperrec"] / "config.yaml").write_text(yaml.safe_dump({**config, **settings}))
    feedback_dir = mounts[config["serving"]["feedback_dir"]]
    feedback_dir.mkdir(parents=True)
    records = feedback_records(300, ctr=0.002, start=START + 30 * 86400)  # CTR below the 0.01 floor
    (feedback_dir / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    command = container["command"]
    argv = [re.sub(r"^(/[^ ]*)", lambda m: _mapped(m.group(1), mounts), arg) for arg in command[1:]]
    for var in container.get("env", []):
        monkeypatch.setenv(var["name"], _mapped(var["value"], mounts))
    monkeypatch.setattr("kfp.Client", lambda host, namespace=None: client)
    monkeypatch.chdir(tmp_path / "pod")  # MLflow's default artifact root (./mlruns) of a sqlite tracking URI
    return main(argv), command


def _mapped(path: str, mounts: dict[str, Path]) -> str:
    for mount, local in sorted(mounts.items(), key=lambda item: -len(item[0])):
        if path == mount or path.startswith(mount + "/"):
            return str(local) + path[len(mount):]
    return path


def s3_objects(uri: str) -> dict[str, bytes]:
    """Every object under an s3:// prefix of the moto server, by key relative to the prefix."""
    import boto3

    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    client = boto3.client("s3")
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    return {key[len(prefix):]: client.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys}


def test_the_cronjob_starts_a_run_that_imports_the_window_it_checked(tmp_path, monkeypatch, kfp_client, s3):
    client = kfp_client()
    rc, command = run_cronjob_command(tmp_path, cluster_settings(tmp_path, **KFP_UPLOADED), monkeypatch, client)
    assert rc == 0 and command[:2] == ["hyperrec", "drift"] and "--trigger" in command
    (run,) = client.runs  # FakeKfpClient accepted it: it fits the compiled pipeline
    params = run["params"]
    assert params["force_retrain"] is True and "quality: ctr" in params["trigger_reason"]
    assert params["reference_uri"] == KFP_UPLOADED["reference_uri"]
    # The feedback log on the pod's PVC was uploaded as a snapshot of the checked window, under this run's name.
    assert params["current_uri"] == f"{KFP_UPLOADED['current_uri']}{params['pipeline_run']}/"
    assert is_kfp_importable(params["current_uri"])
    objects = s3_objects(params["current_uri"])
    assert list(objects) == ["current.parquet"]
    (tmp_path / "import").mkdir()
    (tmp_path / "import" / "current.parquet").write_bytes(objects["current.parquet"])
    imported = read_events(tmp_path / "import")  # what the pipeline's drift step reads from the imported folder
    window = json.loads(params["data_window"])
    checked = select_window(read_events(tmp_path / "pod" / "feedback"), window["start_unix"], window["end_unix"])
    assert len(imported) == window["rows"] > 0
    pd.testing.assert_frame_equal(imported, checked.reset_index(drop=True))


def test_the_cronjob_reads_its_reference_from_the_object_store(tmp_path, monkeypatch, kfp_client, s3):
    import boto3

    reference = synthetic_events(200, seed=1)
    bucket, _, prefix = KFP_UPLOADED["reference_uri"].removeprefix("s3://").partition("/")
    reference.to_parquet(tmp_path / "interactions.parquet")
    boto3.client("s3").upload_file(str(tmp_path / "interactions.parquet"), bucket, f"{prefix}interactions.parquet")
    client = kfp_client()
    settings = cluster_settings(tmp_path, reference=KFP_UPLOADED["reference_uri"], **KFP_UPLOADED)
    rc, _ = run_cronjob_command(tmp_path, settings, monkeypatch, client)
    summary = json.loads((tmp_path / "pod" / "tmp" / "hyperrec" / "monitoring" / "drift_summary.json").read_text())
    assert rc == 0 and summary["windows"]["reference"]["rows"] == len(reference)
    assert client.runs[0]["params"]["reference_uri"] == settings["monitoring"]["sources"]["reference"]


def test_without_object_store_uris_the_cronjob_fails_instead_of_starting_a_broken_run(tmp_path, monkeypatch,
                                                                                      kfp_client, capsys):
    client = kfp_client()
    kfp = {k: v for k, v in KFP_UPLOADED.items() if k not in ("reference_uri", "current_uri")}
    rc, _ = run_cronjob_command(tmp_path, cluster_settings(tmp_path, **kfp), monkeypatch, client)
    assert rc == 2 and client.runs == []
    assert "monitoring.trigger.kfp.reference_uri and monitoring.trigger.kfp.current_uri" in capsys.readouterr().err

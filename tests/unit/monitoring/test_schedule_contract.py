"""Schedules: the weekly recurring run and the hourly drift CronJob start runs that really retrain.

The other side is the compiled retraining pipeline. The recurring run is the KFP API body in
manifests/components/monitoring/kfp-recurring-run.yaml; the CronJob's command is run here as its pod would run
it (its mounts mapped into tmp_path, the config manifests/base/config.yaml as shipped, but for the MLflow
server), with FakeKfpClient in place of kfp.Client and a moto S3 server in place of the object store.
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
from hyperrec.monitoring.events import read_events
from hyperrec.monitoring.settings import is_kfp_importable
from hyperrec.monitoring.windows import select_window
from hyperrec.pipelines.contract import PipelineContract

REPO = Path(__file__).resolve().parents[3]
MONITORING = REPO / "manifests" / "components" / "monitoring"
URIS = {
    "REFERENCE_URI": KFP_UPLOADED["reference_uri"],
    "CURRENT_URI": f"{KFP_UPLOADED['current_uri']}latest/",
}
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


# -- the hourly CronJob
# ------------------------------------------------------------------------------------------


# The ConfigMap the platform engineer creates after uploading hyperrec-retraining (docs/DEPLOY.md).
RETRAINING_PIPELINE = {
    "hyperrec-retraining-pipeline": {
        "pipeline_id": KFP_UPLOADED["pipeline_id"],
        "pipeline_version_id": KFP_UPLOADED["pipeline_version_id"],
    }
}


def shipped_config(tmp_path: Path, **changes) -> dict:
    """manifests/base/config.yaml as shipped, with dotted ``changes`` (None deletes). Always changed: the
    MLflow server (none runs here: a sqlite file) and output_dir."""
    config = yaml.safe_load((REPO / "manifests" / "base" / "config.yaml").read_text())
    changes = {"tracking.tracking_uri": f"sqlite:///{tmp_path / 'mlflow.db'}",
               "output_dir": str(tmp_path / "outputs"), **changes}
    for dotted, value in changes.items():
        *sections, key = dotted.split(".")
        node = config
        for section in sections:
            node = node[section]
        if value is None:
            del node[key]
        else:
            node[key] = value
    return config


def upload_reference(uri: str, frame: pd.DataFrame, tmp_path: Path) -> None:
    """The champion's prepared data (its interactions table) at ``uri`` on the moto server."""
    import boto3

    bucket, _, prefix = uri.removeprefix("s3://").partition("/")
    frame.to_parquet(tmp_path / "interactions.parquet")
    boto3.client("s3").upload_file(
        str(tmp_path / "interactions.parquet"), bucket, f"{prefix}interactions.parquet"
    )


def run_cronjob_command(tmp_path: Path, config: dict, monkeypatch, client) -> tuple[int, list[str]]:
    """The CronJob's container command, with each mounted path mapped to a folder under tmp_path and its env
    set as the kubelet would (ConfigMap keys from RETRAINING_PIPELINE)."""
    pod = yaml.safe_load((MONITORING / "cronjob.yaml").read_text())["spec"]["jobTemplate"]["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    mounts = {m["mountPath"]: tmp_path / "pod" / m["name"] for m in container["volumeMounts"]}
    mounts["/etc/hyperrec"].mkdir(parents=True)
    (mounts["/etc/hyperrec"] / "config.yaml").write_text(yaml.safe_dump(config))
    feedback_dir = mounts[config["serving"]["feedback_dir"]]
    feedback_dir.mkdir(parents=True)
    records = feedback_records(300, ctr=0.002, start=START + 30 * 86400)  # CTR below the 0.01 floor
    (feedback_dir / "events.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    command = container["command"]
    argv = [re.sub(r"^(/[^ ]*)", lambda m: _mapped(m.group(1), mounts), arg) for arg in command[1:]]
    for var in container.get("env", []):
        if "valueFrom" in var:
            ref = var["valueFrom"]["configMapKeyRef"]
            monkeypatch.setenv(var["name"], RETRAINING_PIPELINE[ref["name"]][ref["key"]])
        else:
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


def test_the_shipped_cronjob_starts_a_run_that_imports_the_window_it_checked(
    tmp_path, monkeypatch, kfp_client, s3
):
    config = shipped_config(tmp_path)
    kfp = config["monitoring"]["trigger"]["kfp"]
    reference = synthetic_events(200, seed=1)
    upload_reference(config["monitoring"]["sources"]["reference"], reference, tmp_path)
    client = kfp_client()
    rc, command = run_cronjob_command(tmp_path, config, monkeypatch, client)
    assert rc == 0 and command[:2] == ["hyperrec", "drift"] and "--trigger" in command
    # The CronJob's own check read the reference from the object store.
    summary = json.loads(
        (tmp_path / "pod" / "tmp" / "hyperrec" / "monitoring" / "drift_summary.json").read_text()
    )
    assert summary["windows"]["reference"]["rows"] == len(reference)
    (run,) = client.runs  # FakeKfpClient accepted it: it fits the compiled pipeline
    params = run["params"]
    assert params["force_retrain"] is True and "quality: ctr" in params["trigger_reason"]
    assert params["reference_uri"] == kfp["reference_uri"]
    # The feedback log on the pod's PVC was uploaded as a snapshot of the checked window, under this run's
    # name.
    assert params["current_uri"] == f"{kfp['current_uri']}{params['pipeline_run']}/"
    assert is_kfp_importable(params["current_uri"])
    objects = s3_objects(params["current_uri"])
    assert list(objects) == ["current.parquet"]
    # ... and the rolling copy that the weekly recurring run imports holds the same rows.
    assert s3_objects(f"{kfp['current_uri']}latest/") == objects
    (tmp_path / "import").mkdir()
    (tmp_path / "import" / "current.parquet").write_bytes(objects["current.parquet"])
    imported = read_events(
        tmp_path / "import"
    )  # what the pipeline's drift step reads from the imported folder
    window = json.loads(params["data_window"])
    checked = select_window(
        read_events(tmp_path / "pod" / "feedback"), window["start_unix"], window["end_unix"]
    )
    assert len(imported) == window["rows"] > 0
    pd.testing.assert_frame_equal(imported, checked.reset_index(drop=True))


def test_without_object_store_uris_the_cronjob_fails_instead_of_starting_a_broken_run(tmp_path, monkeypatch,
                                                                                      kfp_client, capsys):
    client = kfp_client()
    config = shipped_config(tmp_path, **{"monitoring.trigger.kfp.reference_uri": None,
                                         "monitoring.trigger.kfp.current_uri": None})
    rc, _ = run_cronjob_command(tmp_path, config, monkeypatch, client)
    assert rc == 2 and client.runs == []
    assert (
        "monitoring.trigger.kfp.reference_uri and monitoring.trigger.kfp.current_uri"
        in capsys.readouterr().err
    )

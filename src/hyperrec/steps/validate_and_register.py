"""Step validate_and_register: gate the challenger, then register its bundle in the MLflow Model Registry.

The gate (``hyperrec.registry.gate``) compares the challenger with every baseline and the champion; only a
passing challenger's bundle is registered (``hyperrec.registry.mlflow_registry``). See docs/REGISTRY.md.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hyperrec.config import HyperrecConfig
from hyperrec.hashing import sha256_file
from hyperrec.registry.fairness_floors import check_floors, floors_enabled, read_audit
from hyperrec.registry.gate import (
    GateDecision,
    GateError,
    apply_fairness_floors,
    decide,
    learned_models,
    read_models_json,
    select_challenger,
)
from hyperrec.registry.integrity import config_sha256, read_bundle_manifest, sha256_json
from hyperrec.registry.mlflow_registry import (
    CHALLENGER,
    CHAMPION,
    DECISION_ARTIFACT,
    DEFAULT_REGISTERED_NAME,
    BundleRegistry,
)
from hyperrec.registry.version_tags import (
    DATA_REPORT_TAG,
    PROTOCOL_TAG,
    TRAINING_RUN_TAG,
    UNKNOWN,
    VersionInfo,
)

logger = logging.getLogger(__name__)

STEP = "validate_and_register"
METRICS_FILE = "metrics.json"
#: Where the data_prep step logs its report (hyperrec.steps.data_prep_step).
DATA_REPORT_ARTIFACT = "data_report/data_report.json"


def validate_and_register_step(
    cfg: HyperrecConfig,
    pipeline_run: str,
    evaluation_dir: Path,
    bundle_dir: Path,
    challenger_name: str | None = None,
    *,
    registered_name: str = DEFAULT_REGISTERED_NAME,
    min_improvement: float = 0.0,
    baselines: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Gate the challenger of ``evaluation_dir/metrics.json``; register ``bundle_dir`` only if it passes.

    The gate compares ``cfg.evaluation.gate_metric`` with every baseline (default: all of
    ``hyperrec.models.registry.BASELINES``) and the champion's recorded value. A failed gate registers
    nothing and raises nothing: the decision is logged to this step's MLflow run and returned, and the
    pipeline goes on. Broken inputs (missing model or metric, unreadable or tampered bundle) raise.

    ``challenger_name``: the metrics.json model the bundle was exported from; when None, the bundle's
    ``model_name`` if metrics.json has it, else the best learned (non-baseline) model.

    Returns (JSON-ready; the component returns it as a string)::

        {"decision": {GateDecision fields}, "registered": null | {"name", "version", "source", "run_id",
         "aliases"}, "registered_name": str, "challenger_source": "argument" | "bundle manifest" |
         "best learned model", "mlflow_run_id": str, "pipeline_run": str}
    """

    from hyperrec import tracking

    metric = cfg.evaluation.gate_metric
    metrics = _read_metrics(Path(evaluation_dir))
    baselines = list(baselines) if baselines is not None else _baseline_names()
    manifest = read_bundle_manifest(Path(bundle_dir))
    challenger, challenger_source = _resolve_challenger(
        metrics, str(manifest.get("model_name", "")), challenger_name, baselines, metric
    )
    registry = BundleRegistry.from_target(cfg)
    with tracking.step_run(cfg, STEP, pipeline_run) as run:
        decision = _gate(registry, registered_name, metrics, challenger, baselines, metric, min_improvement)
        if floors_enabled(cfg.fairness.floors):
            audit = read_audit(Path(evaluation_dir))
            decision = apply_fairness_floors(decision, *check_floors(audit, challenger, cfg.fairness.floors))
        _log_decision(decision, challenger, metric, registered_name)
        registered: VersionInfo | None = None
        if decision.passed:
            registered = _register(cfg, registry, Path(bundle_dir), manifest, metrics, decision, challenger,
                                   registered_name, pipeline_run, run.info.run_id)
        else:
            logger.warning("gate failed for %s; nothing registered: %s", challenger,
                           "; ".join(decision.reasons))
        run_id = run.info.run_id
    return {
        "decision": decision.to_dict(),
        "registered": registered.to_dict() if registered else None,
        "registered_name": registered_name,
        "challenger_source": challenger_source,
        "mlflow_run_id": run_id,
        "pipeline_run": pipeline_run,
    }


def _gate(registry: BundleRegistry, registered_name: str, metrics: dict[str, Any], challenger: str,
          baselines: Sequence[str], metric: str, min_improvement: float) -> GateDecision:
    """The gate's decision against the baselines and the current champion (with a note on a protocol
    change)."""
    champion = registry.alias_version(registered_name, CHAMPION)
    champion_value = registry.champion_metric(registered_name, metric) if champion else None
    decision = decide(
        metrics, challenger, baselines, champion_value, metric, min_improvement,
        champion_version=champion.version if champion else None,
    )
    protocol_sha = sha256_json(metrics["protocol"]) if isinstance(metrics.get("protocol"), dict) else None
    if champion is not None and protocol_sha is not None:
        champion_protocol = champion.tags.get(PROTOCOL_TAG, UNKNOWN)
        if champion_protocol not in (UNKNOWN, protocol_sha):
            decision.reasons.append(
                f"note: champion v{champion.version} was evaluated under another protocol or data "
                "(protocol sha256 differs); its recorded value may not be comparable"
            )
    return decision


def _log_decision(decision: GateDecision, challenger: str, metric: str, registered_name: str) -> None:
    """The gate's numbers, tags and decision JSON on the step's MLflow run."""
    import mlflow

    from hyperrec import tracking

    gate_numbers = {
        "gate.passed": float(decision.passed),
        "gate.challenger_value": decision.challenger_value,
        "gate.best_baseline_value": decision.best_baseline_value,
        "gate.margin": decision.margin,
    }
    if decision.champion_value is not None:
        gate_numbers["gate.champion_value"] = decision.champion_value
    tracking.log_metrics(gate_numbers)
    mlflow.set_tags({
        "hyperrec.gate.passed": str(decision.passed).lower(),
        "hyperrec.gate.challenger": challenger,
        "hyperrec.gate.metric": metric,
        "hyperrec.registered_name": registered_name,
    })
    mlflow.log_text(json.dumps(decision.to_dict(), indent=2, sort_keys=True), DECISION_ARTIFACT)


def _register(
    cfg: HyperrecConfig, registry: BundleRegistry, bundle_dir: Path, manifest: dict[str, Any],
    metrics: dict[str, Any], decision: GateDecision, challenger: str, registered_name: str, pipeline_run: str,
    run_id: str,
) -> VersionInfo:
    """Register the bundle with its lineage: the manifest's, else what this pipeline run logged in MLflow."""
    import mlflow

    manifest_lineage = manifest.get("lineage") if isinstance(manifest.get("lineage"), dict) else {}
    found = _pipeline_lineage(registry, pipeline_run)
    lineage = {"hyperrec.config_sha256": config_sha256(cfg)}
    if not manifest_lineage.get("data_report_sha256") and DATA_REPORT_TAG in found:
        lineage[DATA_REPORT_TAG] = found[DATA_REPORT_TAG]
    training_run_id = manifest_lineage.get("training_run_id") or found.get(TRAINING_RUN_TAG)
    registered = registry.register_bundle(
        bundle_dir,
        registered_name=registered_name,
        decision=decision,
        training_run_id=training_run_id,
        pipeline_run=pipeline_run,
        run_id=run_id,
        lineage=lineage,
        challenger_metrics=metrics["models"][challenger],
        protocol=metrics.get("protocol") if isinstance(metrics.get("protocol"), dict) else None,
    )
    mlflow.set_tag("hyperrec.registered_version", registered.version)
    logger.info("gate passed: %s registered as %s v%s (alias %s)", challenger, registered_name,
                registered.version, CHALLENGER)
    return registered


def _baseline_names() -> list[str]:
    """Every baseline of ``hyperrec.models.registry.BASELINES``: what a challenger must beat by default."""
    from hyperrec.models.registry import BASELINES

    return [cls.name for cls in BASELINES]

def _read_metrics(path: Path) -> dict[str, Any]:
    file = path / METRICS_FILE if path.is_dir() else path
    return read_models_json(file, missing=f"no {METRICS_FILE} at {path}",
                            schema="hyperrec.evaluation.harness")


def _resolve_challenger(metrics: dict[str, Any], bundle_model: str, challenger_name: str | None,
                        baselines: Sequence[str], metric: str) -> tuple[str, str]:
    if challenger_name:
        return challenger_name, "argument"
    if bundle_model in metrics["models"] and bundle_model not in set(baselines):
        return bundle_model, "bundle manifest"
    learned = learned_models(metrics, baselines)
    if not learned:
        raise GateError("metrics.json has no learned model to gate (only baselines: "
                        f"{sorted(metrics['models'])})")
    chosen = select_challenger(metrics, learned, metric)
    if len(learned) > 1:
        logger.warning("bundle model %r is not in metrics.json; gating the best learned model %r of %s",
                       bundle_model, chosen, learned)
    return chosen, "best learned model"


def _pipeline_lineage(registry: BundleRegistry, pipeline_run: str) -> dict[str, str]:
    """Training run id and data report sha256 found among the MLflow runs of the same pipeline run.

    The training run is the latest ``train*`` step other than ``train_baselines``; the data report is the
    ``data_report.json`` artifact of the latest ``data_prep`` step. Anything not found is left out.
    """
    from mlflow.exceptions import MlflowException

    from hyperrec.tracking import PIPELINE_RUN_TAG, STEP_TAG

    found: dict[str, str] = {}
    if not pipeline_run or any(char in pipeline_run for char in "'\"\\`"):
        return found
    try:
        runs = registry.client.search_runs(
            [registry.experiment_id()],
            filter_string=f"tags.`{PIPELINE_RUN_TAG}` = '{pipeline_run}'",
            order_by=["attributes.start_time DESC"],
            max_results=200,
        )
        for found_run in runs:
            step = found_run.data.tags.get(STEP_TAG, "")
            if TRAINING_RUN_TAG not in found and step.startswith("train") and step != "train_baselines":
                found[TRAINING_RUN_TAG] = found_run.info.run_id
            if DATA_REPORT_TAG not in found and step == "data_prep":
                with tempfile.TemporaryDirectory() as tmp:
                    try:
                        local = registry.client.download_artifacts(
                            found_run.info.run_id, DATA_REPORT_ARTIFACT, tmp)
                    except (MlflowException, OSError):
                        continue
                    found[DATA_REPORT_TAG] = sha256_file(Path(local))
    except MlflowException as exc:
        logger.warning("could not look up lineage of pipeline run %s in MLflow: %s", pipeline_run, exc)
    return found

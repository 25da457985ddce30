"""One step of the canary of the registered ``challenger``: read the evidence, decide, act, record.

State lives in the decision log (``canary.decision_log``), so ``hyperrec canary step`` can run from a
schedule (a KFP recurring run, a CronJob) and ``hyperrec canary run`` can be restarted at any point.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from hyperrec.cluster_settings import ClusterConfig
from hyperrec.deploy.settings import DeployConfig
from hyperrec.errors import HyperrecError
from hyperrec.experiments.actions import CanaryActions, CanaryTarget
from hyperrec.experiments.controller import CanaryController, Decision
from hyperrec.experiments.ctr import tally_feedback
from hyperrec.experiments.decisions import DecisionLog, log_to_mlflow
from hyperrec.experiments.evidence import CHALLENGER, CHAMPION, EvidenceSource
from hyperrec.experiments.prometheus import PrometheusEvidence, PromQLClient
from hyperrec.experiments.sequential import ArmCounts
from hyperrec.experiments.settings import CanaryConfig
from hyperrec.online.settings import ServingConfig

logger = logging.getLogger(__name__)


class CanarySettings(Protocol):
    """What the canary reads of ``HyperrecConfig`` (a protocol, because ``hyperrec.config`` imports this
    package's settings): the canary, deploy, cluster and serving sections and the MLflow tracking settings."""

    canary: CanaryConfig
    deploy: DeployConfig
    cluster: ClusterConfig
    serving: ServingConfig
    tracking: Any

    def mlflow_uri(self) -> str:
        """Where the decision is recorded."""
        ...


class CanaryError(HyperrecError):
    """The canary cannot run (no challenger, already decided, unreachable Prometheus)."""


def feedback_ctr(cfg: CanarySettings, versions: dict[str, str]) -> tuple[ArmCounts, ArmCounts]:
    """Cumulative (champion, challenger) impressions and clicks from the feedback log."""
    from hyperrec.online.feedback import read_feedback

    tally = tally_feedback(read_feedback(cfg.serving.feedback_dir).records, versions=versions)
    return tally.counts(CHAMPION), tally.counts(CHALLENGER)


def canary_step(cfg: CanarySettings, *, api: Any = None, registry: Any = None,
                source: EvidenceSource | None = None) -> Decision:
    """Decide and apply one step of the canary of ``canary.registered_model``'s ``challenger``."""
    from hyperrec.registry import BundleRegistry
    from hyperrec.registry.mlflow_registry import CHALLENGER as CHALLENGER_ALIAS
    from hyperrec.registry.mlflow_registry import CHAMPION as CHAMPION_ALIAS

    registry = registry or BundleRegistry.from_target(cfg)
    name = cfg.canary.registered_model
    aliases = registry.aliases(name)
    if CHALLENGER_ALIAS not in aliases or CHAMPION_ALIAS not in aliases:
        raise CanaryError(f"{name} needs both a {CHAMPION_ALIAS} and a {CHALLENGER_ALIAS} alias for a canary "
                          f"(has {sorted(aliases) or 'none'})")
    versions = {CHAMPION: aliases[CHAMPION_ALIAS], CHALLENGER: aliases[CHALLENGER_ALIAS]}
    log = DecisionLog(cfg.canary.decision_log)
    controller = CanaryController(cfg.canary, log.resume_state(versions[CHALLENGER]))
    if not controller.running:
        raise CanaryError(
            f"the canary of {name} v{versions[CHALLENGER]} is already {controller.state.status}"
        )
    if source is None:
        client = PromQLClient(cfg.canary.prometheus.url, timeout=cfg.canary.prometheus.timeout_seconds)
        source = PrometheusEvidence(client, cfg.canary.prometheus, lambda: feedback_ctr(cfg, versions))
    decision = controller.step(source.read(controller.traffic_percent))
    actions = _actions(cfg, api, registry, versions[CHALLENGER])
    actions.apply(decision)
    log.append(decision, registered_model=name, champion_version=versions[CHAMPION],
               challenger_version=versions[CHALLENGER],
               mode="embedded" if cfg.canary.embedded_url else cfg.deploy.mode,
               sent=[{"verb": verb, "object": obj, "body": body} for verb, obj, body in actions.sent])
    log_to_mlflow(
        cfg.mlflow_uri(), cfg.tracking.experiment, f"canary-{name}-v{versions[CHALLENGER]}", decision
    )
    logger.info("canary %s v%s step %d: %s (%d%% -> %d%%): %s", name, versions[CHALLENGER], decision.step,
                decision.action, decision.traffic_before, decision.traffic_after, decision.reason)
    return decision


def start_raw_canary(cfg: CanarySettings, *, api: Any = None, registry: Any = None) -> list[tuple[str, str]]:
    """RawDeployment: create the challenger's InferenceService and the route at the first traffic step."""
    actions = _actions(cfg, api, registry, None)
    actions.start(cfg.canary.traffic_steps[0])
    return [(verb, obj) for verb, obj, _ in actions.sent]


def _actions(cfg: CanarySettings, api: Any, registry: Any, challenger_version: str | None) -> CanaryActions:
    from hyperrec.registry import BundleRegistry

    registry = registry or BundleRegistry.from_target(cfg)
    name = cfg.canary.registered_model
    if cfg.canary.embedded_url is not None:
        from hyperrec.experiments.embedded import EmbeddedCanaryActions

        if challenger_version is None:
            raise CanaryError("an embedded canary is started by `hyperrec serve --challenger-registered "
                              f"{name}@challenger`")
        target = CanaryTarget(name, challenger_version, cfg.deploy.namespace, cfg.deploy.service_name)
        return EmbeddedCanaryActions(cfg.canary.embedded_url, registry, cfg.deploy, cfg.canary, target)
    from hyperrec.deploy.apply import kubernetes_api
    from hyperrec.deploy.service import plan_deployment

    body = None
    if cfg.deploy.mode == "RawDeployment":
        body = plan_deployment(cfg, f"{name}@challenger", registry).body
        challenger_version = (
            challenger_version or body["metadata"]["annotations"]["hyperrec.io/model-version"]
        )
    if challenger_version is None:
        raise CanaryError("a Serverless canary is started by `hyperrec deploy NAME@challenger`")
    target = CanaryTarget(name, challenger_version, cfg.deploy.namespace, cfg.deploy.service_name)
    return CanaryActions(
        api or kubernetes_api(), registry, cfg.deploy, cfg.canary, target, challenger_isvc=body
    )

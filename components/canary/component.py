"""One step of the canary controller: read Prometheus and the feedback log, then promote, hold or roll
back."""

from kfp import dsl

from hyperrec.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def canary_step(config_yaml: str) -> str:
    """Decide and apply one step of the canary of ``canary.registered_model``'s challenger.

    Run it from a recurring run every ``canary.prometheus.window``; state is kept in ``canary.decision_log``
    (a mounted volume). The service account needs ``get`` and ``patch`` on ``inferenceservices`` (and
    ``inferencegraphs`` in RawDeployment mode). Returns the decision as JSON; see components/canary/README.md.

    Args:
        config_yaml: the full HyperrecConfig as YAML or JSON (``canary.*``, ``deploy.*``, ``tracking.*``).

    Returns:
        The decision as sorted JSON, without its evidence.
    """
    import json

    from hyperrec.config import config_from_yaml
    from hyperrec.experiments.service import canary_step as step
    from hyperrec.logs import configure_logging

    configure_logging()
    decision = step(config_from_yaml(config_yaml))
    return json.dumps({k: v for k, v in decision.to_dict().items() if k != "evidence"}, sort_keys=True)

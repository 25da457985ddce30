"""Serve the version the gate registered: create the KServe InferenceService, or start a canary of it."""

from kfp import dsl

from hyperrec.components import DEFAULT_IMAGE


@dsl.component(base_image=DEFAULT_IMAGE, install_kfp_package=False)
def deploy(config_yaml: str, registration: str) -> str:
    """Deploy ``registered`` of a ``validate_and_register`` result (its exact version) with ``deploy.*``
    settings.

    No version registered: nothing is done and the task succeeds. The task's service account needs ``get``,
    ``create`` and ``patch`` on ``inferenceservices.serving.kserve.io`` in ``deploy.namespace``. Returns JSON;
    see components/deploy/README.md.

    Args:
        config_yaml: the full HyperrecConfig as YAML or JSON (``deploy.*``, ``cluster.*``, ``tracking.*``).
        registration: the JSON output of ``validate_and_register``.

    Returns:
        JSON: ``{"deployed": false, "reason"}`` or the deployed reference, action, service and traffic.
    """
    import json

    from hyperrec.config import config_from_yaml
    from hyperrec.deploy.service import deploy_registered
    from hyperrec.logs import configure_logging

    configure_logging()
    return json.dumps(deploy_registered(config_from_yaml(config_yaml), registration), sort_keys=True)

"""Deploy a registered serving bundle to KServe: ``hyperrec deploy NAME@ALIAS``.

- ``settings``: ``DeployConfig`` (``HyperrecConfig.deploy``);
- ``source``: resolve ``NAME@ALIAS`` / ``NAME/VERSION`` to the bundle's URIs in the MLflow artifact store;
- ``model_config``: the Triton config the predictor will load exists in the bundle and fits the node pool;
- ``body``: the InferenceService body (transformer + Triton predictor, node pool, autoscaling);
- ``apply``: create it, or patch it so the new version starts as a canary (kubernetes client);
- ``service``: those steps in order (``plan_deployment``, ``deploy``, ``deploy_registered``);
- ``cli``: the ``hyperrec deploy`` subcommand.

Nothing is imported here, so ``hyperrec.config`` can import ``hyperrec.deploy.settings`` cheaply.
"""

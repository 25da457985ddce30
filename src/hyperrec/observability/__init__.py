"""Observability as code: the Grafana dashboard and the Prometheus alerts of a hyperrec deployment.

Both are generated from :mod:`hyperrec.observability.queries`, whose PromQL names only metrics the serving
runtime (``hyperrec.serving.metrics``, ``hyperrec.serving.server``) and the drift monitor
(``hyperrec.monitoring.metrics``) really export. ``python -m hyperrec.observability`` (``make observability``)
writes the committed copies in manifests/components/monitoring and helm/hyperrec/files; a test regenerates
them and fails on any difference.
"""

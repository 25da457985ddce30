"""A /metrics endpoint exporting hyperrec.serving.metrics' real metric objects, for the canary's Prometheus
test.

``python canary_metrics_server.py`` prints its port, then serves on 127.0.0.1:

- ``GET /metrics``: the default registry, as KServe's model server exposes it;
- ``POST /observe`` ``{"requests": n, "errors": k, "degraded": d, "latency_seconds": s}``: n requests through
  the transformer's stages (predictor stage taking ``s``), k of them failed at the predictor, d degraded.

One lock around both, so a scrape never sees half of an observation.
"""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from hyperrec.serving.metrics import DEGRADED, ERRORS, STAGE_SECONDS

MODEL = "hyperrec"
#: The revision comes from the scrape's target label, as on a cluster; an empty exporter label is no label.
REVISION = ""
LOCK = threading.Lock()


def observe(requests: int, errors: int, degraded: int, latency_seconds: float) -> None:
    stages = {
        stage: STAGE_SECONDS.labels(model=MODEL, stage=stage, revision=REVISION)
        for stage in ("preprocess", "predictor")
    }
    with LOCK:
        for _ in range(requests):
            stages["preprocess"].observe(0.001)
            stages["predictor"].observe(latency_seconds)
        ERRORS.labels(model=MODEL, kind="predictor", revision=REVISION).inc(errors)
        DEGRADED.labels(model=MODEL, reason="predictor_error", revision=REVISION).inc(degraded)


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        with LOCK:
            body = generate_latest(REGISTRY)
        self.send_response(200)
        self.send_header("Content-Type", CONTENT_TYPE_LATEST)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:  # noqa: N802
        payload = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        observe(payload["requests"], payload["errors"], payload["degraded"], payload["latency_seconds"])
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


if __name__ == "__main__":
    # History before the first scrape, as a transformer that has served a while has: increase() never
    # extrapolates a counter below zero, so over a 4-s window series that start at 0 and series that do not
    # would be scaled differently and the error ratio would be off; with history both scale alike.
    observe(10_000, 1_000, 1_000, 0.001)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    sys.stdout.close()
    server.serve_forever()

"""Run INSIDE the serving image by tests/images/test_images.py: `python serving_smoke.py BUNDLE FEEDBACK_DIR`.

Imports the transformer's entry point (``python -m hyperrec.serving``), loads the transformer and feedback
models on BUNDLE as the entry point does, and answers one recommend request through KServe's REST app while
no predictor listens (the answer degrades to popularity). Prints one JSON line: the answer, whether torch,
transformers or kfp can be imported, and which of them the serving path imported.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

HEAVY = ("torch", "transformers", "kfp", "mlflow", "evidently")


def main(bundle: Path, feedback_dir: Path) -> None:
    from fastapi.testclient import TestClient

    import hyperrec.serving.__main__  # noqa: F401  (the container entry point: its module-level imports)
    from hyperrec.online.settings import ServingConfig
    from hyperrec.serving.server import HyperrecModelServer, build_models, create_rest_app

    # Port 9 (discard) is closed: every predictor call fails fast and the answer degrades.
    settings = ServingConfig(
        feedback_dir=feedback_dir, predictor_url="127.0.0.1:9", predictor_protocol="http"
    )
    models = build_models("transformer", bundle, settings, pseudonymize=lambda user: "p:" + user)
    server = HyperrecModelServer(enable_grpc=False)
    for model in models:
        model.load()
        server.register_model(model)
    client = TestClient(create_rest_app(server), raise_server_exceptions=False)
    name = models[0].name
    response = client.post(
        f"/v1/models/{name}:predict", json={"user_id": "u1", "history": ["m00003"], "k": 3}
    )
    print(json.dumps({
        "status": response.status_code,
        "answer": response.json(),
        "importable": {module: importlib.util.find_spec(module) is not None for module in HEAVY},
        "imported": sorted(module for module in HEAVY if module in sys.modules),
    }))


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))

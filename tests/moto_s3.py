"""A real S3 API for tests: ``moto`` in server mode on 127.0.0.1, as the issue asks for the object-store
joints (the registry's S3 artifact store, KServe's storage initializer, the drift monitor's window
uploads)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator
from contextlib import contextmanager


@contextmanager
def moto_s3(buckets: Iterable[str]) -> Iterator[dict[str, str]]:
    """Run a moto S3 server with ``buckets`` created; while it runs, the AWS variables that MLflow, boto3 and
    kserve-storage read point at it (yielded as a dict). The server is stopped and the variables restored
    after."""
    import boto3

    from hyperrec.serving.server import free_port

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    env = {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "MLFLOW_S3_ENDPOINT_URL": endpoint,
        "AWS_ENDPOINT_URL": endpoint,
        "S3_VERIFY_SSL": "0",
    }
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        _wait_until_up(endpoint, server)
        client = boto3.client("s3", endpoint_url=endpoint)
        for bucket in buckets:
            client.create_bucket(Bucket=bucket)
        yield env
    finally:
        server.terminate()
        server.wait(timeout=30)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _wait_until_up(endpoint: str, server: subprocess.Popen) -> None:
    for _ in range(150):  # bounded: about 30 s on a loaded 2-core machine
        try:
            urllib.request.urlopen(f"{endpoint}/moto-api/", timeout=2).close()
            return
        except (urllib.error.URLError, ConnectionError):
            if server.poll() is not None:
                raise RuntimeError("moto server exited at start-up") from None
            time.sleep(0.2)
    raise RuntimeError(f"moto server did not answer on {endpoint}")

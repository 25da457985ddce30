"""gRPC channel options of the transformer → predictor link (issue 11, finding 4).

gRPC's default reconnect back-off starts at 1 s and grows by 1.6x up to 120 s: after a predictor restart the
channel sat in TRANSIENT_FAILURE for seconds (6.2 s measured) although the predictor was ready. Capping the
back-off at ``MAX_RECONNECT_BACKOFF_MS`` makes the first model answer come within about a second of the
predictor being back; the transformer's own retry loop (``v2_client``) still owns the per-request retries.
"""

from __future__ import annotations

from typing import Any

MIN_RECONNECT_BACKOFF_MS = 100
MAX_RECONNECT_BACKOFF_MS = 1000


def predictor_channel_args() -> list[tuple[str, Any]]:
    """Channel arguments of the predictor channel (``serving/v2_grpc.py``): unlimited message sizes (as
    KServe's client sets them) and gRPC's own retries off (``enable_retries`` 0; the transformer's retry loop
    owns them)."""
    return [
        ("grpc.max_send_message_length", -1),
        ("grpc.max_receive_message_length", -1),
        ("grpc.enable_retries", 0),
        ("grpc.initial_reconnect_backoff_ms", MIN_RECONNECT_BACKOFF_MS),
        ("grpc.min_reconnect_backoff_ms", MIN_RECONNECT_BACKOFF_MS),
        ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS),
    ]

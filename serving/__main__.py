"""``python -m hyperrec.serving {predictor,transformer} --bundle DIR [KServe flags]`` (container entrypoint).

predictor:   the embedded V2 predictor (onnxruntime) on --http_port / --grpc_port.
transformer: the recommend transformer plus the ``feedback`` model; calls the predictor over V2.

Where the transformer finds the predictor, first match wins:

1. ``--predictor_url host:port`` (hyperrec's own flag; ``hyperrec serve`` passes it for the embedded
predictor);
2. ``--predictor_host HOST`` (KServe's flag: on a cluster the controller appends
   ``--predictor_host <isvc>-predictor.<namespace>`` to the transformer's args). A host without a port gets
   the port KServe's own clients use for it: 80 (443 with ``--predictor_use_ssl``), the port of the
   predictor's Knative / Kubernetes Service, which forwards gRPC (h2c) and REST to the one port the predictor
   exposes;
3. ``serving.predictor_url`` of the config (default ``127.0.0.1:8086``: the embedded predictor's gRPC port).

The transport is ``--predictor_protocol`` (or the deprecated ``--protocol``), mapped onto
``serving.predictor_protocol`` (``grpc-v2`` → ``grpc``, ``v2`` → ``http``); without either flag the config's
``serving.predictor_protocol`` stands. ``v1`` is refused: the transformer speaks only V2 to its predictor.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kserve import model_server

from hyperrec.logs import configure_logging

from .parent_death import die_with_parent

if TYPE_CHECKING:  # pragma: no cover
    from hyperrec.online.settings import ServingConfig

logger = logging.getLogger("hyperrec.serving")

parser = argparse.ArgumentParser(prog="python -m hyperrec.serving", parents=[model_server.parser])
parser.add_argument("role", choices=["predictor", "transformer"])
parser.add_argument(
    "--bundle", type=Path, default=None, help="serving bundle folder (default: serving.bundle_dir)"
)
parser.add_argument("--config", type=Path, default=None, help="hyperrec YAML config")
parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
parser.add_argument("--predictor_url", default=None,
                    help="host:port of the V2 predictor (transformer); wins over --predictor_host")
parser.add_argument(
    "--serving_settings",
    type=Path,
    default=None,
    help="JSON file of a whole ServingConfig (what `hyperrec serve` passes); wins over --config",
)
parser.add_argument("--bind_host", default="0.0.0.0", help="address to listen on (hyperrec serve: 127.0.0.1)")

# KServe's parser gives --protocol / --predictor_protocol the default "v1", so "not given" and "v1" look the
# same in its namespace. This parser tells them apart (its defaults are None) without touching KServe's
# parser, whose action objects the parser above shares.
_explicit = argparse.ArgumentParser(add_help=False)
_explicit.add_argument("--protocol", default=None)
_explicit.add_argument("--predictor_protocol", default=None)

#: KServe's V2 protocol names → serving.predictor_protocol.
PROTOCOLS = {"grpc-v2": "grpc", "v2": "http"}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line (KServe's flags included; unknown flags are ignored, as KServe does).

    Adds ``requested_protocol``: the value of ``--predictor_protocol``, else of ``--protocol``, else None.
    """
    args, _ = parser.parse_known_args(argv)
    explicit, _ = _explicit.parse_known_args(argv)
    args.requested_protocol = explicit.predictor_protocol or explicit.protocol
    return args


def predictor_address(host: str, *, use_ssl: bool = False) -> str:
    """``host:port`` for a KServe ``--predictor_host``: the host as given, port 80 (443 with TLS) unless it
    has one.

    That is the port KServe's own transformer clients use: ``InferenceGRPCClient`` appends ``:80`` / ``:443``
    to a URL without a port, and the REST client's base URL is ``http(s)://<predictor_host>``.
    """
    address = host.strip()
    for scheme in ("http://", "https://", "grpc://"):
        if address.startswith(scheme):
            address = address[len(scheme):]
    address = address.rstrip("/")
    if not address or "/" in address:
        raise ValueError(f"--predictor_host must be a host name (optionally host:port), got {host!r}")
    has_port = "]:" in address if address.startswith("[") else ":" in address
    return address if has_port else f"{address}:{443 if use_ssl else 80}"


def apply_predictor_flags(settings: ServingConfig, args: argparse.Namespace) -> ServingConfig:
    """``settings`` with the predictor address and transport the command line asks for (see the module doc).

    Raises ValueError for what the transformer cannot do (V1, TLS to the predictor, an unusable host).
    """
    updates: dict[str, str] = {}
    protocol = getattr(args, "requested_protocol", None)
    if protocol is not None:
        if protocol not in PROTOCOLS:
            raise ValueError(
                f"--predictor_protocol {protocol} is not supported: the transformer calls its predictor over "
                "the V2 "
                f"protocol ({' or '.join(PROTOCOLS)})"
            )
        updates["predictor_protocol"] = PROTOCOLS[protocol]
    if getattr(args, "predictor_use_ssl", False):
        raise ValueError(
            "--predictor_use_ssl is not supported: hyperrec's V2 client calls the predictor in plain text "
            "(leave transport security between the pods to the service mesh)"
        )
    if args.predictor_url:
        updates["predictor_url"] = args.predictor_url
    elif args.predictor_host:
        updates["predictor_url"] = predictor_address(args.predictor_host)
    return settings.model_copy(update=updates) if updates else settings


def main(argv: Sequence[str] | None = None) -> None:
    die_with_parent()
    args = parse_args(argv)
    configure_logging()
    from hyperrec.online.settings import ServingConfig

    from .server import (
        HyperrecModelServer,
        bandit_config,
        build_models,
        predictor_config_for,
        privacy_guard,
        pseudonymizer_from_config,
        serving_config,
        stop_on_load_failure,
    )

    if args.serving_settings is not None:
        settings = ServingConfig.model_validate_json(args.serving_settings.read_text(encoding="utf-8"))
    else:
        settings = serving_config(args.config, args.overrides)
    transformer = args.role == "transformer"
    if transformer:
        try:
            settings = apply_predictor_flags(settings, args)
        except ValueError as exc:
            parser.error(str(exc))
        source = ("--predictor_url" if args.predictor_url else "--predictor_host" if args.predictor_host
                  else "serving.predictor_url")
        logger.info("the transformer calls the predictor at %s over %s (address from %s)",
                    settings.predictor_url, settings.predictor_protocol, source)
    bundle = args.bundle or settings.bundle_dir
    if bundle is None:
        parser.error("--bundle is required (or set serving.bundle_dir)")
    pseudonymize = pseudonymizer_from_config(args.config, args.overrides) if transformer else None
    bandit = bandit_config(args.config, args.overrides) if transformer else None
    models = build_models(
        args.role,
        bundle,
        settings,
        model_name=None if args.model_name == "model" else args.model_name,
        pseudonymize=pseudonymize,
        bandit=bandit,
        privacy=privacy_guard(args.config, args.overrides, settings, bandit, pseudonymize)
        if transformer
        else None,
    )
    for model in models:
        if settings.load_in_background and hasattr(model, "start_loading"):
            model.start_loading(on_error=stop_on_load_failure)
        else:
            model.load()
    HyperrecModelServer(
        http_port=args.http_port, grpc_port=args.grpc_port, enable_grpc=args.enable_grpc and not transformer,
        bind_host=args.bind_host, workers=args.workers, http=settings.http,
        predictor_config=predictor_config_for(settings) if transformer else None,
    ).start(models)


if __name__ == "__main__":
    main()

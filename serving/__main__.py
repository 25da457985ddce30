"""``python -m hyperrec.serving {predictor,transformer} --bundle DIR [KServe flags]`` (container entrypoint).

predictor:   the embedded V2 predictor (onnxruntime) on --http_port / --grpc_port.
transformer: the recommend transformer plus the ``feedback`` model; calls the predictor at
             ``serving.predictor_url`` (or --predictor_url) over ``serving.predictor_protocol``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from kserve import model_server

from hyperrec.logs import configure_logging

parser = argparse.ArgumentParser(prog="python -m hyperrec.serving", parents=[model_server.parser])
parser.add_argument("role", choices=["predictor", "transformer"])
parser.add_argument("--bundle", type=Path, default=None, help="serving bundle folder (default: serving.bundle_dir)")
parser.add_argument("--config", type=Path, default=None, help="hyperrec YAML config")
parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
parser.add_argument("--predictor_url", default=None, help="host:port of the V2 predictor (transformer)")
parser.add_argument("--serving_settings", type=Path, default=None,
                    help="JSON file of a whole ServingConfig (what `hyperrec serve` passes); wins over --config")
parser.add_argument("--bind_host", default="0.0.0.0", help="address to listen on (hyperrec serve: 127.0.0.1)")


def main() -> None:
    args, _ = parser.parse_known_args()
    configure_logging()
    from hyperrec.online.settings import ServingConfig

    from .server import (
        HyperrecModelServer,
        build_models,
        predictor_config_for,
        pseudonymizer_from_config,
        serving_config,
        stop_on_load_failure,
    )

    if args.serving_settings is not None:
        settings = ServingConfig.model_validate_json(args.serving_settings.read_text(encoding="utf-8"))
    else:
        settings = serving_config(args.config, args.overrides)
    if args.predictor_url:
        settings = settings.model_copy(update={"predictor_url": args.predictor_url})
    if args.predictor_protocol != "v1":  # KServe's flag: grpc-v2 or v2 (REST)
        settings = settings.model_copy(update={"predictor_protocol": "grpc" if args.predictor_protocol == "grpc-v2"
                                                else "http"})
    bundle = args.bundle or settings.bundle_dir
    if bundle is None:
        parser.error("--bundle is required (or set serving.bundle_dir)")
    transformer = args.role == "transformer"
    models = build_models(
        args.role, bundle, settings, model_name=None if args.model_name == "model" else args.model_name,
        pseudonymize=pseudonymizer_from_config(args.config, args.overrides) if transformer else None,
    )
    for model in models:
        if settings.load_in_background and hasattr(model, "start_loading"):
            model.start_loading(on_error=stop_on_load_failure)
        else:
            model.load()
    HyperrecModelServer(
        http_port=args.http_port, grpc_port=args.grpc_port, enable_grpc=args.enable_grpc and not transformer,
        bind_host=args.bind_host, workers=args.workers,
        predictor_config=predictor_config_for(settings) if transformer else None,
    ).start(models)


if __name__ == "__main__":
    main()

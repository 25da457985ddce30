"""``hyperrec serve`` and ``hyperrec recommend`` (``hyperrec bench serve`` is in ``bench_cli``).

``hyperrec.cli`` registers them with ``add_serving_commands(commands)``; every handler takes the parsed
namespace and raises ``HyperrecError`` subclasses for clean CLI errors (exit code 2).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from hyperrec.cli_options import add_common_options as _common
from hyperrec.errors import HyperrecError

logger = logging.getLogger(__name__)


def add_bundle_options(parser: argparse.ArgumentParser) -> None:
    """``--bundle``, ``--registered`` or ``--demo`` (one of them), and ``--demo-items``: where the bundle
    comes from."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--bundle", type=Path, help="serving bundle folder (default: serving.bundle_dir)")
    group.add_argument("--registered", metavar="NAME@ALIAS",
                       help="fetch the bundle an MLflow alias points to, e.g. hyperrec-ranker@challenger "
                            "(sha256-verified against the registry)")
    group.add_argument("--demo", action="store_true",
                       help="build and serve the tiny untrained demo bundle (no trained model needed)")
    parser.add_argument("--demo-items", type=int, default=1000, help="catalogue size of the --demo bundle")


def add_serving_commands(subparsers: Any) -> None:
    """Register ``serve`` and ``recommend`` on the ``hyperrec`` subparsers."""
    serve = subparsers.add_parser("serve", help="run the embedded predictor and the transformer on 127.0.0.1")
    _common(serve)
    add_bundle_options(serve)
    serve.add_argument("--host", default=None, help="address to bind (default: serving.host, 127.0.0.1)")
    serve.add_argument(
        "--port", type=int, default=None, help="transformer HTTP port (default: serving setting)"
    )
    serve.add_argument("--predictor-protocol", choices=["grpc", "http"], default=None)
    serve.add_argument(
        "--duration", type=float, default=None, help="stop after this many seconds (default: Ctrl-C)"
    )
    canary = serve.add_argument_group("embedded canary: a challenger revision beside the champion")
    challenger = canary.add_mutually_exclusive_group()
    challenger.add_argument(
        "--challenger-bundle", type=Path, default=None, help="the challenger's bundle folder"
    )
    challenger.add_argument("--challenger-registered", metavar="NAME@ALIAS", default=None,
                            help="the challenger from the registry, e.g. hyperrec-ranker@challenger")
    canary.add_argument(
        "--challenger-percent",
        type=int,
        default=None,
        help="share of requests for the challenger (default: serving.split.challenger_percent)",
    )
    canary.add_argument("--sticky", action="store_true", default=None,
                        help="split per user instead of per request (KServe splits per request)")
    serve.set_defaults(handler=_cmd_serve)

    rec = subparsers.add_parser("recommend", help="ask the running transformer for explained recommendations")
    _common(rec)
    rec.add_argument("--user-id", required=True)
    rec.add_argument("--history", nargs="*", default=[], metavar="ITEM_ID", help="item ids, oldest first")
    rec.add_argument("--candidates", nargs="*", default=None, metavar="ITEM_ID")
    rec.add_argument("--k", type=int, default=10)
    rec.add_argument("--no-explain", dest="explain", action="store_false")
    rec.add_argument("--url", default="http://127.0.0.1:8080", help="transformer base URL")
    rec.add_argument("--model", default="ranker", help="model name on the transformer")
    rec.add_argument("--timeout", type=float, default=10.0)
    rec.add_argument("--json", action="store_true", help="print the raw JSON answer")
    rec.set_defaults(handler=_cmd_recommend)


def _settings(args: argparse.Namespace) -> Any:
    from hyperrec.serving.server import serving_config

    return serving_config(args.config, args.overrides)


def _fetch_registered(args: argparse.Namespace, spec: str, flag: str, dst: Path) -> tuple[Path, str]:
    """Download the bundle of ``NAME@ALIAS``; return it with the registry version the alias points to."""
    from hyperrec.cli_options import config_from_args
    from hyperrec.registry import BundleRegistry, RegistryError

    name, sep, alias = spec.partition("@")
    if not sep or not name or not alias:
        raise HyperrecError(f"{flag} wants NAME@ALIAS, e.g. hyperrec-ranker@champion; got {spec!r}")
    registry = BundleRegistry.from_target(config_from_args(args))
    info = registry.alias_version(name, alias)
    if info is None:
        raise RegistryError(f"{flag}: registered model {name!r} has no alias {alias!r}")
    return registry.download_bundle(name, alias, dst), str(info.version)


def _resolve_bundle(args: argparse.Namespace, settings: Any, workdir: Path) -> Path:
    if args.registered:
        bundle, _ = _fetch_registered(args, args.registered, "--registered", workdir / "registered")
        return bundle
    if args.demo:
        from hyperrec.export.tiny import build_demo_bundle

        bundle = workdir / "demo-bundle"
        build_demo_bundle(bundle, n_items=args.demo_items, max_history=20, dynamo=False)
        return bundle
    bundle = args.bundle or settings.bundle_dir
    if bundle is None:
        raise HyperrecError("give --bundle DIR, --demo, or set serving.bundle_dir")
    return Path(bundle)


def _serve_settings(args: argparse.Namespace, workdir: Path) -> tuple[Any, Path, Path | None]:
    """Settings, champion bundle and challenger bundle (None) of ``hyperrec serve``, registry versions
    included."""
    settings = _settings(args)
    updates = {k: v for k, v in {"host": args.host, "transformer_http_port": args.port,
                                 "predictor_protocol": args.predictor_protocol}.items() if v is not None}
    if args.registered:
        bundle, version = _fetch_registered(args, args.registered, "--registered", workdir / "registered")
        updates["registered_version"] = version
    else:
        bundle = _resolve_bundle(args, settings, workdir)
    split: dict[str, Any] = {k: v for k, v in {"challenger_percent": args.challenger_percent,
                                               "sticky": args.sticky}.items() if v is not None}
    challenger = args.challenger_bundle
    if args.challenger_registered:
        challenger, version = _fetch_registered(args, args.challenger_registered, "--challenger-registered",
                                                workdir / "challenger")
        split["challenger_registered_version"] = version
    try:
        updates["split"] = type(settings.split).model_validate({**settings.split.model_dump(), **split})
    except ValueError as exc:
        raise HyperrecError(f"hyperrec serve: {exc}") from None
    return settings.model_copy(update=updates), bundle, challenger


def _cmd_serve(args: argparse.Namespace) -> None:
    """Start the children, print the endpoints, supervise until ``--duration``, SIGTERM or Ctrl-C.

    Logs go to ``serving.supervisor.log_dir`` (kept after exit); a child that dies is restarted with back-off
    and one that keeps dying ends the command with an error (``serving/supervisor.py``).
    """
    from hyperrec.serving.local import LocalServers
    from hyperrec.serving.supervisor import Stopped, Supervisor, signals_ignored, stop_signals

    with tempfile.TemporaryDirectory(prefix="hyperrec-serve-") as tmp, stop_signals():
        settings, bundle, challenger = _serve_settings(args, Path(tmp))
        servers = LocalServers(bundle, settings, config_path=args.config, overrides=args.overrides,
                               log_dir=settings.supervisor.log_dir, challenger=challenger)
        try:
            endpoints = servers.start()
            _print_endpoints(endpoints, servers, settings, challenger)
            until = None if args.duration is None else time.monotonic() + args.duration
            Supervisor(servers, settings.supervisor).run(until)
        except Stopped:
            sys.stdout.write("stopping\n")
        finally:
            with signals_ignored():
                servers.stop()


def _print_endpoints(endpoints: Any, servers: Any, settings: Any, challenger: Path | None) -> None:
    split = settings.split
    if challenger is not None:
        sys.stdout.write(f"split:       {split.challenger_percent}% to the challenger "
                         f"({'per user' if split.sticky else 'per request'}); {endpoints.split_url}\n")
    sys.stdout.write(
        f"transformer: {endpoints.recommend_url}\n"
        f"feedback:    {endpoints.feedback_url}\n"
        f"predictor:   {endpoints.predictor_http}/v2/models/{endpoints.model_name}/infer "
        f"(gRPC {endpoints.predictor_grpc})\n"
        f"metrics:     {endpoints.transformer_http}/metrics\n"
        f"logs:        {servers.log_dir}\n"
        f"try: hyperrec recommend --url {endpoints.transformer_http} --model {endpoints.model_name} "
        f"--user-id demo-user --history <item ids>\n"
    )
    sys.stdout.flush()


def _cmd_recommend(args: argparse.Namespace) -> None:
    import httpx

    body: dict[str, Any] = {
        "user_id": args.user_id,
        "history": args.history,
        "k": args.k,
        "explain": args.explain,
    }
    if args.candidates:
        body["candidates"] = args.candidates
    url = f"{args.url.rstrip('/')}/v1/models/{args.model}:predict"
    try:
        response = httpx.post(url, json=body, timeout=args.timeout)
    except httpx.HTTPError as exc:
        raise HyperrecError(f"cannot reach the transformer at {url}: {exc}") from None
    if response.status_code != 200:
        try:
            message = response.json().get("error", response.text)
        except ValueError:
            message = response.text
        raise HyperrecError(f"the transformer answered {response.status_code}: {message}")
    answer = response.json()
    sys.stdout.write(json.dumps(answer, indent=2) + "\n" if args.json else format_answer(answer) + "\n")


def format_answer(answer: dict[str, Any]) -> str:
    """Recommendations as readable lines, with their explanations."""
    model = answer.get("model", {})
    header = (
        f"request {answer.get('request_id')} · model {model.get('name')} version {model.get('version')} · "
        f"source {answer.get('source')}"
    )
    if answer.get("degraded"):
        header += f" · DEGRADED ({answer.get('degraded_reason')})"
    lines = [header]
    if answer.get("unknown_items"):
        lines.append(f"ignored unknown items: {', '.join(answer['unknown_items'])}")
    for rec in answer.get("recommendations", []):
        lines.append(f"{rec['rank']:>3}. {rec['title']} [{rec['item_id']}] "
                     f"({', '.join(rec['categories']) or 'no category'}) score {rec['score']:.4f}")
        because = rec.get("because")
        if because:
            lines.append("      because of: " + "; ".join(
                f"{b['title']} ({b['similarity']:.2f})" for b in because))
    if answer.get("explanation_method"):
        lines.append(f"explanations: {answer['explanation_method']}")
    return "\n".join(lines)

"""``hyperrec bench serve``: the command line of ``serving/bench.py``.

By default it starts the embedded predictor and the transformer on the bundle (``LocalServers``) and benches
them; ``--url`` benches servers that already run (``hyperrec serve``, another checkout's servers for a
before/after comparison), with ``--server-pid`` naming the processes whose CPU to account.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from hyperrec.cli_options import add_common_options
from hyperrec.errors import HyperrecError

from .cli import _resolve_bundle, _settings, add_bundle_options


def add_bench_serve(bench_commands: Any) -> None:
    """Register ``bench serve`` on the ``bench`` group's subparsers (``hyperrec.cli`` builds the group)."""
    bserve = bench_commands.add_parser("serve", help="latency/throughput/CPU of serving vs a naive baseline")
    add_common_options(bserve)
    add_bundle_options(bserve)
    bserve.add_argument(
        "--concurrency", type=int, nargs="+", default=None, help="default: serving.bench_concurrency"
    )
    bserve.add_argument(
        "--requests",
        type=int,
        default=None,
        help="distinct request bodies per level (httpx sends each once; wrk cycles through them; "
        "default: serving.bench_requests)",
    )
    bserve.add_argument("--duration", type=int, default=10, help="seconds per level when wrk drives the load")
    bserve.add_argument("--generator", choices=["auto", "wrk", "httpx"], default="auto",
                        help="load generator (auto: wrk when installed)")
    bserve.add_argument("--naive-requests", type=int, default=None,
                        help="per level through the naive baseline, 0 to skip it (default: "
                             "serving.bench_naive_requests)")
    bserve.add_argument("--naive-model", type=Path, default=None,
                        help="HF model folder for the baseline (default: a tiny untrained BERT, a strawman)")
    bserve.add_argument("--url", default=None,
                        help="bench this running transformer's recommend URL instead of starting servers")
    bserve.add_argument(
        "--server-pid",
        type=int,
        action="append",
        default=None,
        help="with --url: a server process (its children count too) to account CPU to; repeatable",
    )
    bserve.add_argument("--label", default=None, help="title of the report")
    bserve.add_argument("--output", type=Path, default=Path("outputs/bench/serve.json"),
                        help="JSON report; the markdown goes beside it (.md)")
    bserve.set_defaults(handler=cmd_bench_serve)


def cmd_bench_serve(args: argparse.Namespace) -> None:
    from hyperrec.export.bundle import verify_bundle
    from hyperrec.online.catalogue import Catalogue

    from .local import LocalServers

    settings = _settings(args).model_copy(update={
        "predictor_http_port": 0, "predictor_grpc_port": 0, "transformer_http_port": 0,
        "request_timeout_s": 5.0, "attempt_timeout_s": 5.0,  # measure the path, not the fallback
    })
    if args.server_pid and not args.url:
        raise HyperrecError("--server-pid goes with --url (servers this command did not start)")
    with tempfile.TemporaryDirectory(prefix="hyperrec-bench-") as tmp:
        bundle = _resolve_bundle(args, settings, Path(tmp))
        label = args.label or ("tiny untrained demo ranker" if args.demo else f"bundle {bundle}")
        verify_bundle(bundle)  # a folder that is not a bundle is one clear line (BundleError), exit 2
        catalogue = Catalogue.from_bundle(bundle)
        if args.url:
            report = _run(args, settings, args.url, catalogue, label)
        else:
            with LocalServers(bundle, settings, config_path=args.config, overrides=args.overrides,
                              log_dir=Path(tmp) / "logs") as endpoints:
                report = _run(args, settings, endpoints.recommend_url, catalogue, label)
    from .bench import write_report

    markdown = write_report(report, args.output)
    sys.stdout.write(markdown.read_text(encoding="utf-8") + f"\nreport: {args.output} and {markdown}\n")


def _run(args: argparse.Namespace, settings: Any, url: str, catalogue: Any, label: str) -> dict[str, Any]:
    from .bench import run_bench
    from .bench_load import wrk_available

    if args.generator == "wrk" and not wrk_available():
        raise HyperrecError("--generator wrk: wrk is not installed (Debian: apt-get install wrk)")
    return run_bench(
        url, catalogue,
        concurrency=args.concurrency or settings.bench_concurrency,
        requests=args.requests or settings.bench_requests,
        naive_requests=settings.bench_naive_requests if args.naive_requests is None else args.naive_requests,
        naive_model=args.naive_model, label=label,
        use_wrk=None if args.generator == "auto" else args.generator == "wrk",
        duration_s=args.duration, server_pids=args.server_pid,
    )

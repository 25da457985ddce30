"""``hyperrec`` command line: one subcommand per step, plus pipeline compile/run and the demo.

Every subcommand takes ``--config FILE`` and repeatable ``--set section.key=value`` overrides; environment
variables ``HYPERREC__SECTION__KEY`` sit between the two (see hyperrec.config).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

from hyperrec.cli_options import add_common_options as _common
from hyperrec.cli_options import config_from_args as _config
from hyperrec.config import HyperrecConfig
from hyperrec.errors import HyperrecError
from hyperrec.logs import configure_logging

logger = logging.getLogger("hyperrec")

#: The columns the demo prints; metrics.md holds every metric.
DEMO_COLUMNS = ("hr@10", "ndcg@10", "recall@20", "mrr", "auc")


def _cmd_config(args: argparse.Namespace) -> None:
    sys.stdout.write(_config(args).to_yaml())


def _cmd_data_prep(args: argparse.Namespace) -> None:
    from hyperrec.steps.data_prep import data_prep_step

    cfg = _config(args)
    out = args.output or cfg.output_dir / "data"
    data_prep_step(cfg, args.pipeline_run, out)
    sys.stdout.write(f"prepared data: {out}\n")


def _cmd_train_baselines(args: argparse.Namespace) -> None:
    from hyperrec.steps.baselines import train_baselines_step

    cfg = _config(args)
    train_baselines_step(cfg, args.pipeline_run, args.prepared, args.output)
    sys.stdout.write(f"models: {args.output}\n")


def _cmd_fine_tune(args: argparse.Namespace) -> None:
    from hyperrec.steps.fine_tune import fine_tune_step

    fine_tune_step(_config(args), args.pipeline_run, args.prepared, args.output)
    sys.stdout.write(f"models: {args.output}\n")


def _cmd_export(args: argparse.Namespace) -> None:
    from hyperrec.steps.export import export_step

    manifest = export_step(_config(args), args.pipeline_run, args.prepared, args.models, args.output)
    sys.stdout.write(f"bundle: {args.output} (model {manifest['model_name']}, {manifest['n_items']} items)\n")


def _cmd_evaluate(args: argparse.Namespace) -> None:
    from hyperrec.evaluation.tables import metrics_table
    from hyperrec.steps.evaluate import evaluate_step

    cfg = _config(args)
    result = evaluate_step(cfg, args.pipeline_run, args.prepared, args.models, args.output)
    sys.stdout.write(metrics_table(result) + f"\n\nmetrics: {args.output / 'metrics.json'}\n")


def _cmd_pipeline_compile(args: argparse.Namespace) -> None:
    from hyperrec.pipelines.runner import compile_pipelines

    for path in compile_pipelines(_config(args), args.output_dir):
        sys.stdout.write(f"{path}\n")


def _cmd_pipeline_run(args: argparse.Namespace) -> None:
    if not args.local:
        raise HyperrecError(
            "only --local runs are started from this command; on a cluster, upload the YAML of "
            "'hyperrec pipeline compile' (see README, 'On a cluster')"
        )
    _run_local_and_report(_config(args))


def _cmd_demo(args: argparse.Namespace) -> None:
    """Train embedded, then serve the new bundle and show explained answers from the real endpoint."""
    from hyperrec.data.prepared import PreparedData
    from hyperrec.serving.cli import format_answer
    from hyperrec.serving.demo import ask_served_model, demo_requests

    cfg = _config(args)
    output_dir = _run_local_and_report(cfg)
    requests = demo_requests(PreparedData(output_dir / "data"))
    answers = ask_served_model(cfg, output_dir / "bundle", requests, config_path=args.config,
                               overrides=args.overrides)
    for body, answer in zip(requests, answers):
        sys.stdout.write(f"\nPOST recommend user_id={body['user_id']} history={len(body.get('history', []))} "
                         f"items k={body['k']}\n{format_answer(answer)}\n")


def _run_local_and_report(cfg: HyperrecConfig) -> Path:
    from hyperrec.evaluation.tables import metrics_table
    from hyperrec.pipelines.runner import run_local

    run = run_local(cfg)
    metrics = json.loads((run.output_dir / "evaluation" / "metrics.json").read_text(encoding="utf-8"))
    registration = json.loads((run.output_dir / "registration.json").read_text(encoding="utf-8"))
    decision = registration["decision"]
    verdict = (
        "registered as " + str(registration["registered"]) if registration["registered"] else "not registered"
    )
    sys.stdout.write(
        "\n" + metrics_table(metrics, keys=DEMO_COLUMNS) + "\n\n"
        f"gate ({decision['metric']}): {decision['challenger']} {decision['challenger_value']:.4f} vs best "
        f"baseline {decision['best_baseline']} {decision['best_baseline_value']:.4f} -> {verdict}\n"
        f"pipeline run {run.pipeline_run} finished in {run.wall_seconds:.0f} s\n"
        f"outputs: {run.output_dir.resolve()} (every metric: evaluation/metrics.md)\n"
        f"MLflow:  mlflow ui --backend-store-uri {cfg.mlflow_uri()}\n"
    )
    return run.output_dir


def build_parser() -> argparse.ArgumentParser:
    """The ``hyperrec`` parser: the steps, the pipelines and the demo here, every other group from its
    package.

    Returns:
        The parser; every command sets ``handler``, which ``main`` calls with the parsed arguments.
    """
    from hyperrec.deploy.cli import add_deploy_commands
    from hyperrec.evaluation.cli import add_audit_command
    from hyperrec.experiments.cli import add_experiment_commands
    from hyperrec.online.cli import add_feedback_commands
    from hyperrec.pipelines.drift_cli import add_monitoring_commands
    from hyperrec.privacy.cli import add_privacy_commands
    from hyperrec.serving.cli import add_serving_commands

    parser = argparse.ArgumentParser(prog="hyperrec", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("config", help="print the resolved configuration as YAML")
    _common(show)
    show.set_defaults(handler=_cmd_config)
    _add_step_commands(commands)
    _add_pipeline_commands(commands)
    demo = commands.add_parser("demo", help="run the training pipeline embedded and print the results")
    _common(demo)
    demo.set_defaults(handler=_cmd_demo)
    add_serving_commands(commands)
    _add_bench_commands(commands)
    add_monitoring_commands(commands)
    add_deploy_commands(commands)
    add_experiment_commands(commands)
    add_feedback_commands(commands)
    add_privacy_commands(commands)
    add_audit_command(commands)
    return parser


_PREPARED = ("--prepared", {"type": Path, "required": True, "help": "prepared-data folder"})
_MODEL_FOLDERS = ("--output", {"type": Path, "required": True, "help": "folder for the model folders"})


def _step_command(commands: Any, name: str, help_: str, handler: Any, *arguments: tuple[str, dict[str, Any]],
                  run_help: str = "MLflow grouping tag") -> None:
    """One step command: the common options, ``arguments`` in order, then ``--pipeline-run``."""
    parser = commands.add_parser(name, help=help_)
    _common(parser)
    for flag, options in arguments:
        parser.add_argument(flag, **options)
    parser.add_argument("--pipeline-run", default="cli", help=run_help)
    parser.set_defaults(handler=handler)


def _add_step_commands(commands: Any) -> None:
    """One command per pipeline step: data-prep, train-baselines, fine-tune, export, evaluate."""
    _step_command(commands, "data-prep", "validate, clean, split and segment the raw data", _cmd_data_prep,
                  ("--output", {"type": Path, "help": "prepared-data folder (default: <output_dir>/data)"}))
    _step_command(commands, "train-baselines", "fit popularity, item-kNN, ALS and BPR", _cmd_train_baselines,
                  _PREPARED, _MODEL_FOLDERS)
    _step_command(commands, "fine-tune", "train the language models of modeling.train", _cmd_fine_tune,
                  _PREPARED, _MODEL_FOLDERS)
    _step_command(
        commands, "export", "export modeling.serve to a serving bundle (ONNX + Triton)", _cmd_export,
        _PREPARED,
        ("--models", {"type": Path, "required": True, "help": "folder holding the language-model folders"}),
        ("--output", {"type": Path, "required": True, "help": "bundle folder to write"}),
        run_help="MLflow grouping tag and bundle version",
    )
    _step_command(
        commands, "evaluate", "evaluate saved models under both protocols", _cmd_evaluate, _PREPARED,
        ("--models", {"type": Path, "nargs": "+", "required": True, "help": "folders of model folders"}),
        ("--output", {"type": Path, "required": True, "help": "folder for metrics.json and recommendations"}),
    )


def _add_pipeline_commands(commands: Any) -> None:
    """``pipeline compile``, ``pipeline run`` and ``pipeline publish``."""
    from hyperrec.pipelines.publish import add_publish_command

    pipeline = commands.add_parser("pipeline", help="compile or run Kubeflow pipelines")
    pipeline_commands = pipeline.add_subparsers(dest="pipeline_command", required=True)
    compile_ = pipeline_commands.add_parser("compile", help="write pipeline YAML for a KFP cluster")
    _common(compile_)
    compile_.add_argument("--output-dir", type=Path, required=True)
    compile_.set_defaults(handler=_cmd_pipeline_compile)
    run = pipeline_commands.add_parser("run", help="run the training pipeline")
    _common(run)
    run.add_argument("--local", action="store_true", help="run embedded with kfp.local.SubprocessRunner")
    run.set_defaults(handler=_cmd_pipeline_run)
    add_publish_command(pipeline_commands)


def _add_bench_commands(commands: Any) -> None:
    """The one ``bench`` group: ``bench serve`` (serving), then the offline benchmarks
    (``hyperrec.benchmarks``)."""
    from hyperrec.benchmarks.cli import add_benchmark_commands
    from hyperrec.serving.bench_cli import add_bench_serve

    bench = commands.add_parser("bench", help="benchmarks")
    bench_commands = bench.add_subparsers(dest="bench_command", required=True)
    add_bench_serve(bench_commands)
    add_benchmark_commands(bench_commands)


def main(argv: list[str] | None = None) -> int:
    """Run one ``hyperrec`` command; a state-changing one is audited first (``privacy.audit``).

    Args:
        argv: the arguments; None: ``sys.argv[1:]``.

    Returns:
        The exit status: 0, or 2 when the command raised a ``HyperrecError`` (logged on one line).
    """
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    try:
        from hyperrec.privacy.audit import record_cli

        record_cli(args, sys.argv[1:] if argv is None else argv)
        args.handler(args)
    except HyperrecError as exc:
        logger.error("%s", " ".join(str(exc).split()))  # one line, whatever the message quotes
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

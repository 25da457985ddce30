"""``hyperrec canary …`` and ``hyperrec ab …``.

Examples::

    hyperrec canary step                                  # one decision for the registered challenger
    hyperrec canary run --interval 300                    # steps until promoted or rolled back
    hyperrec canary start --set deploy.mode=RawDeployment # challenger InferenceService + route
    hyperrec canary simulate --scenario equal --runs 200  # simulated canaries: outcome rates (JSON)
    hyperrec ab plan --baseline 0.05 --mde 0.1            # impressions per arm
    hyperrec ab analyze outputs/feedback --split 50       # per-variant CTR, verdict, SRM, stickiness
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from hyperrec.cli_options import add_common_options, config_from_args
from hyperrec.errors import HyperrecError


def add_experiment_commands(subparsers: Any) -> None:
    """Register ``canary`` and ``ab`` on the ``hyperrec`` subparsers.

    Args:
        subparsers: the ``hyperrec`` parser's subparsers action.
    """
    canary = subparsers.add_parser("canary", help="canary controller: promote or roll back on live metrics")
    commands = canary.add_subparsers(dest="canary_command", required=True)
    step = commands.add_parser("step", help="decide and apply one step (state in canary.decision_log)")
    run = commands.add_parser("run", help="step every --interval seconds until a final decision")
    run.add_argument(
        "--interval", type=float, default=300.0, help="seconds between steps (one PromQL window)"
    )
    start = commands.add_parser("start", help="RawDeployment: create the challenger service and the route")
    simulate = commands.add_parser("simulate", help="simulated canaries of a scenario (no cluster)")
    simulate.add_argument("--scenario", choices=["better", "worse", "equal", "errors", "slow"], required=True)
    simulate.add_argument("--runs", type=int, default=200)
    simulate.add_argument("--impressions-per-step", type=int, default=20_000)
    simulate.add_argument("--timeline", action="store_true", help="also print the first run's timeline")
    for parser, handler in (
        (step, _cmd_step),
        (run, _cmd_run),
        (start, _cmd_start),
        (simulate, _cmd_simulate),
    ):
        add_common_options(parser)
        parser.set_defaults(handler=handler)

    ab = subparsers.add_parser("ab", help="A/B tests: sample sizes and analysis of the feedback log")
    ab_commands = ab.add_subparsers(dest="ab_command", required=True)
    plan = ab_commands.add_parser("plan", help="impressions per arm for a baseline CTR and an MDE")
    plan.add_argument("--baseline", type=float, required=True, help="control CTR, e.g. 0.05")
    plan.add_argument("--mde", type=float, required=True, help="minimum detectable relative lift, e.g. 0.1")
    plan.add_argument("--alpha", type=float, default=0.05)
    plan.add_argument("--power", type=float, default=0.8)
    plan.add_argument("--ratio", type=float, default=1.0, help="treatment / control sizes")
    plan.add_argument("--alternative", choices=["two-sided", "larger"], default="two-sided")
    add_common_options(plan)
    plan.set_defaults(handler=_cmd_plan)
    analyze = ab_commands.add_parser("analyze", help="per-variant CTR, sequential verdict, SRM, stickiness")
    analyze.add_argument("feedback_dir", type=Path, help="folder of the feedback log (feedback-*.jsonl)")
    analyze.add_argument("--variant-field", default="revision", help="record field naming the variant")
    analyze.add_argument("--control", default="champion")
    analyze.add_argument("--treatment", default="challenger")
    analyze.add_argument("--split", type=float, default=50.0, help="intended treatment share in percent")
    analyze.add_argument("--unit", choices=["request", "user"], default="request", help="SRM unit")
    analyze.add_argument("--alpha", type=float, default=0.05)
    analyze.add_argument("--mde", type=float, default=0.2, help="relative lift the sequential test targets")
    add_common_options(analyze)
    analyze.set_defaults(handler=_cmd_analyze)


def _print(payload: Any) -> None:
    sys.stdout.write(json.dumps(payload, indent=2, sort_keys=True) + "\n")


def _cmd_step(args: argparse.Namespace) -> None:
    from hyperrec.experiments.service import canary_step

    decision = canary_step(config_from_args(args))
    _print({k: v for k, v in decision.to_dict().items() if k != "evidence"})


def _cmd_run(args: argparse.Namespace) -> None:
    from hyperrec.experiments.service import canary_step

    cfg = config_from_args(args)
    for _ in range(cfg.canary.max_steps):
        decision = canary_step(cfg)
        sys.stdout.write(f"step {decision.step}: {decision.action} {decision.traffic_before}% -> "
                         f"{decision.traffic_after}%: {decision.reason}\n")
        if decision.final:
            return
        time.sleep(args.interval)


def _cmd_start(args: argparse.Namespace) -> None:
    from hyperrec.experiments.service import start_raw_canary

    for verb, obj in start_raw_canary(config_from_args(args)):
        sys.stdout.write(f"{verb} {obj}\n")


def _cmd_simulate(args: argparse.Namespace) -> None:
    from hyperrec.experiments.simulation import outcome_rates, scenarios, simulate

    cfg = config_from_args(args).canary
    scenario = scenarios(cfg.baseline_ctr)[args.scenario]
    result = outcome_rates(cfg, scenario, runs=args.runs, impressions_per_step=args.impressions_per_step)
    if args.timeline:
        result["timeline"] = simulate(cfg, scenario, seed=0,
                                      impressions_per_step=args.impressions_per_step).timeline()
    _print(result)


def _cmd_plan(args: argparse.Namespace) -> None:
    from hyperrec.experiments.power import plan_sample_size

    try:
        plan = plan_sample_size(args.baseline, args.mde, alpha=args.alpha, power=args.power, ratio=args.ratio,
                                alternative=args.alternative)
    except ValueError as exc:
        raise HyperrecError(f"ab plan: {exc}") from None
    _print(plan.to_dict())


def _cmd_analyze(args: argparse.Namespace) -> None:
    from hyperrec.experiments.ab import AnalysisSpec, analyze
    from hyperrec.experiments.ctr import tally_feedback
    from hyperrec.monitoring.events import FEEDBACK_SEGMENT_GLOB
    from hyperrec.online.feedback import read_feedback

    if not args.feedback_dir.is_dir():
        raise HyperrecError(f"ab analyze: no feedback folder at {args.feedback_dir}")
    if next(args.feedback_dir.glob(FEEDBACK_SEGMENT_GLOB), None) is None:
        raise HyperrecError(
            f"ab analyze: no feedback-NNNNNN.jsonl segments in {args.feedback_dir}; expected the "
            "folder the transformer writes its feedback log to (serving.feedback_dir)"
        )
    read = read_feedback(args.feedback_dir)
    if read.corrupt:
        bad = read.corrupt[0]
        raise HyperrecError(f"ab analyze: {bad.file} line {bad.line}: {bad.reason}")
    spec = AnalysisSpec(control=args.control, treatment=args.treatment, treatment_percent=args.split,
                        unit=args.unit, alpha=args.alpha, mde_relative=args.mde)
    try:
        tally = tally_feedback(read.records, variant_field=args.variant_field)
    except KeyError as exc:
        raise HyperrecError(f"ab analyze: a record lacks the field {exc}") from None
    _print(analyze(tally, spec))

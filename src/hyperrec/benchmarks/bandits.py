"""``hyperrec bench bandits``: every policy on the ml-latest-small simulator, plus the off-policy check.

Outputs in the output folder:

- ``table.md``: CTR, CTR relative to greedy, cumulative expected regret (and its ratio to random's) and
  new-item exposure per policy;
- ``ope.md``: IPS / SNIPS of greedy, uniform random and epsilon-greedy(0.3) estimated from the
  epsilon-greedy run's log, next to the exact simulated truth;
- ``ope_log.jsonl``: that log (the format ``hyperrec.online.bandits.ope.read_log`` reads);
- ``summary.json`` and ``report.html`` (tables and the cumulative regret plot, PNG embedded).
"""

from __future__ import annotations

import base64
import html
import io
import json
import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hyperrec.config import HyperrecConfig
from hyperrec.online.bandits.ope import (
    epsilon_target,
    estimate,
    greedy_target,
    uniform_target,
    write_log,
)
from hyperrec.online.bandits.simdata import SimulationData, load_simulation_data
from hyperrec.online.bandits.simulator import PolicyRun, simulate, true_value

logger = logging.getLogger(__name__)

POLICIES = ("greedy", "epsilon_greedy", "ucb1", "thompson", "linucb", "random")
OPE_LOGGER = "epsilon_greedy"
TABLE_FILE, OPE_FILE, LOG_FILE = "table.md", "ope.md", "ope_log.jsonl"
SUMMARY_FILE, REPORT_FILE = "summary.json", "report.html"


def run_bandit_bench(
    cfg: HyperrecConfig, output_dir: Path, policies: Sequence[str] = POLICIES
) -> dict[str, Any]:
    """Simulate every policy (plus greedy and random, the references), run the OPE check, write the outputs.

    Args:
        cfg: the configuration; ``cfg.bandit`` sets the budget and the simulator.
        output_dir: where the summary, tables, logged events and report page are written (created if missing).
        policies: the policies to compare; greedy and random are always added.

    Returns:
        The summary written to ``summary.json``: simulator settings, per-policy results, OPE check, wall
        seconds.
    """
    started = time.perf_counter()
    bandit, sim = cfg.bandit, cfg.bandit.simulator
    data = load_simulation_data(
        sim,
        dataset_dir(cfg),
        top_n=bandit.top_n,
        knn_neighbors=cfg.baselines.knn_neighbors,
        segments_k=(cfg.prep.segments_k_min, cfg.prep.segments_k_max),
    )
    names = list(dict.fromkeys(["greedy", *policies, "random"]))
    runs = {name: simulate(data, name, bandit, sim, log=name == OPE_LOGGER) for name in names}
    if OPE_LOGGER not in runs:
        runs[OPE_LOGGER] = simulate(data, OPE_LOGGER, bandit, sim, log=True)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_log(output_dir / LOG_FILE, runs[OPE_LOGGER].logged)
    summary = {
        "simulator": _describe(data, cfg),
        "policies": policy_summary({n: runs[n] for n in names}),
        "ope": ope_check(data, runs[OPE_LOGGER], cfg),
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    (output_dir / SUMMARY_FILE).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    (output_dir / TABLE_FILE).write_text(policy_table(summary["policies"]) + "\n", encoding="utf-8")
    (output_dir / OPE_FILE).write_text(ope_table(summary["ope"]) + "\n", encoding="utf-8")
    png = regret_plot({n: runs[n] for n in names}, sim.steps)
    (output_dir / REPORT_FILE).write_text(report_page(summary, png), encoding="utf-8")
    return summary


def dataset_dir(cfg: HyperrecConfig) -> Path:
    """bandit.simulator.dataset_dir, else data.dataset_dir."""
    return cfg.bandit.simulator.dataset_dir or cfg.data.dataset_dir


def policy_summary(runs: Mapping[str, PolicyRun]) -> dict[str, dict[str, float]]:
    """Per policy: CTR (drawn and expected), relative to greedy, regret (and / random's), new-item exposure.

    Args:
        runs: policy name -> simulated run; must include ``"greedy"`` and ``"random"``.

    Returns:
        Policy name -> its metrics (ctr, expected_ctr, ctr_vs_greedy, regret, regret_vs_random,
        new_item_exposure, degraded, requests).
    """
    greedy, random = runs["greedy"], runs["random"]
    return {
        name: {
            "ctr": run.ctr,
            "expected_ctr": run.expected_ctr,
            "ctr_vs_greedy": run.expected_ctr / greedy.expected_ctr - 1.0 if greedy.expected_ctr else 0.0,
            "regret": run.regret,
            "regret_vs_random": run.regret / random.regret if random.regret else 0.0,
            "new_item_exposure": run.new_item_exposure,
            "degraded": run.degraded,
            "requests": run.steps,
        }
        for name, run in runs.items()
    }


def ope_check(data: SimulationData, logged: PolicyRun, cfg: HyperrecConfig) -> dict[str, dict[str, float]]:
    """Estimate three targets from the logging run and put the exact simulated truth beside each.

    Args:
        data: the simulation data, used to compute each target's true value.
        logged: the run of the logging policy, whose logged events feed the estimators.
        cfg: the configuration (simulator slate size, position decay, bandit budget).

    Returns:
        Target policy name -> truth, IPS and SNIPS estimates with their intervals, mean weight, requests, and
        whether each interval covers the truth.
    """
    sim = cfg.bandit.simulator
    targets = {
        "greedy": greedy_target,
        "random": uniform_target,
        "epsilon_greedy(0.3)": epsilon_target(0.3, cfg.bandit.budget),
    }
    result = {}
    for name, target in targets.items():
        found = estimate(logged.logged, target)
        truth = true_value(data, target, sim.k, sim.position_decay)
        result[name] = {
            "truth": truth, "ips": found.ips, "ips_low": found.ips_low, "ips_high": found.ips_high,
            "snips": found.snips, "snips_low": found.snips_low, "snips_high": found.snips_high,
            "mean_weight": found.mean_weight, "requests": found.requests,
            "ips_covers": found.ips_low <= truth <= found.ips_high,
            "snips_covers": found.snips_low <= truth <= found.snips_high,
        }
    return result


def _describe(data: SimulationData, cfg: HyperrecConfig) -> dict[str, Any]:
    sim, bandit = cfg.bandit.simulator, cfg.bandit
    return {
        "dataset": str(dataset_dir(cfg)), "ranker": data.ranker, "users": len(data.users),
        "users_with_reachable_positive": data.users_with_reachable_positive, "steps": sim.steps, "k": sim.k,
        "top_n": bandit.top_n, "budget": bandit.budget, "epsilon": bandit.epsilon, "seed": sim.seed,
        "click_model": f"exam(p) {sim.position_decay} x attraction {sim.attract_positive} (future positive) "
                       f"/ {sim.attract_noise} (other)",
    }


def policy_table(policies: Mapping[str, Mapping[str, float]], tablefmt: str = "github") -> str:
    from tabulate import tabulate

    headers = ["policy", "CTR", "expected CTR", "vs greedy", "cum. regret", "regret / random's",
               "new-item exposure"]
    rows = [[name, f"{p['ctr']:.4f}", f"{p['expected_ctr']:.4f}", f"{100 * p['ctr_vs_greedy']:+.1f} %",
             f"{p['regret']:.1f}", f"{p['regret_vs_random']:.2f}", f"{100 * p['new_item_exposure']:.2f} %"]
            for name, p in policies.items()]
    return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def ope_table(ope: Mapping[str, Mapping[str, Any]], tablefmt: str = "github") -> str:
    from tabulate import tabulate

    headers = ["target", "truth (clicks/request)", "IPS [95 % CI]", "SNIPS [95 % CI]", "mean weight"]
    rows = [[name, f"{o['truth']:.4f}", f"{o['ips']:.4f} [{o['ips_low']:.4f}, {o['ips_high']:.4f}]",
             f"{o['snips']:.4f} [{o['snips_low']:.4f}, {o['snips_high']:.4f}]", f"{o['mean_weight']:.3f}"]
            for name, o in ope.items()]
    return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)


def regret_plot(runs: Mapping[str, PolicyRun], steps: int) -> bytes:
    """PNG: cumulative expected regret per policy over the requests.

    Args:
        runs: policy name -> simulated run, each with its cumulative regret curve.
        steps: the number of simulated requests (the x axis).

    Returns:
        The plot as PNG bytes.
    """
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9, 4.5), dpi=100)
    axes = figure.subplots()
    for name, run in runs.items():
        axes.plot(
            range(1, steps + 1), run.regret_curve, label=name, linestyle="--" if name == "random" else "-"
        )
    axes.set_xlabel("request")
    axes.set_ylabel("cumulative expected regret (clicks)")
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def report_page(summary: Mapping[str, Any], png: bytes) -> str:
    """One self-contained HTML page: settings, the two tables and the regret plot.

    Args:
        summary: the benchmark summary from ``run_bandit_bench``.
        png: the regret plot, embedded as a data URI.

    Returns:
        The HTML page.
    """
    meta = "".join(f"<dt>{html.escape(str(k))}</dt><dd>{html.escape(str(v))}</dd>"
                   for k, v in summary["simulator"].items())
    image = base64.b64encode(png).decode("ascii")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Bandits on the ml-latest-small simulator</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }}
table {{ border-collapse: collapse; margin: 0.5em 0 1.5em; font-size: 0.9em; }}
th, td {{ border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }}
th:first-child, td:first-child {{ text-align: left; }}
dl {{ display: grid; grid-template-columns: max-content auto; gap: 0.2em 1em; }}
dt {{ font-weight: 600; }} dd {{ margin: 0; }} img {{ max-width: 100%; }}
</style></head>
<body>
<h1>Bandits on the ml-latest-small simulator</h1>
<dl>{meta}</dl>
<h2>Policies</h2>
{policy_table(summary["policies"], "html")}
<h2>Off-policy estimates vs simulated truth (logged by {OPE_LOGGER})</h2>
{ope_table(summary["ope"], "html")}
<h2>Cumulative regret</h2>
<img alt="cumulative expected regret per policy" src="data:image/png;base64,{image}">
</body></html>
"""

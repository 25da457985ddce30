"""Off-policy estimates (IPS, SNIPS) of a target policy's clicks per request from a logged feedback file.

Log format, one JSON object per line (one served request)::

    {"request_id": "r1", "policy": "epsilon_greedy", "candidates": ["m3", "m9", ...],   # ranker order
     "slate": [{"item_id": "m9", "position": 0, "propensity": 0.82, "reward": 1.0}, ...]}

Estimator (position-based IPS): each logged (item, position) reward is weighted by
pi(item at position) / mu(item at position), target over logging propensity, and summed over the slate.
It is unbiased when a click depends only on the user, the item and its position (the position-based click
model of the simulator) and the logging policy gives every pair the target uses a positive propensity
(epsilon-greedy over slates does, see slates.epsilon_matrix). SNIPS divides by the mean summed weight
(whose expectation is k). Intervals: normal 95 % for IPS, delta method for SNIPS.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hyperrec.errors import DataError
from hyperrec.online.bandits.slates import epsilon_matrix, outsider_cap, uniform_capped_matrix

Z95 = 1.959963984540054
TargetMatrix = Callable[[int, int], np.ndarray]


@dataclass(frozen=True)
class LoggedItem:
    item_id: str
    position: int
    propensity: float
    reward: float


@dataclass(frozen=True)
class LoggedRequest:
    request_id: str
    policy: str
    candidates: tuple[str, ...]
    slate: tuple[LoggedItem, ...]


@dataclass(frozen=True)
class Estimate:
    """Clicks per request of the target (divide by k for CTR) with 95 % intervals."""

    ips: float
    ips_low: float
    ips_high: float
    snips: float
    snips_low: float
    snips_high: float
    requests: int
    #: Mean of the summed weights over k: near 1 when the log supports the target well.
    mean_weight: float


def write_log(path: Path, requests: Iterable[LoggedRequest]) -> int:
    """Write the JSON Lines log; returns the number of requests."""
    count = 0
    with Path(path).open("w", encoding="utf-8") as out:
        for request in requests:
            record = {"request_id": request.request_id, "policy": request.policy,
                      "candidates": list(request.candidates),
                      "slate": [vars(item) for item in request.slate]}
            out.write(json.dumps(record, separators=(",", ":")) + "\n")
            count += 1
    return count


def read_log(path: Path) -> list[LoggedRequest]:
    """Read and validate a log; a bad line raises DataError naming the file, line and field."""
    requests = []
    with Path(path).open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                requests.append(_parse(line, f"{path}:{number}"))
    return requests


def _parse(line: str, where: str) -> LoggedRequest:
    try:
        record = json.loads(line)
    except ValueError as exc:
        raise DataError(f"{where}: not JSON: {exc}") from None
    if not isinstance(record, dict):
        raise DataError(f"{where}: a line must be a JSON object")
    candidates = record.get("candidates")
    if not isinstance(candidates, list) or not candidates or not all(isinstance(c, str) for c in candidates):
        raise DataError(f"{where}: candidates must be a non-empty list of item ids")
    slate = record.get("slate")
    if not isinstance(slate, list) or not slate:
        raise DataError(f"{where}: slate must be a non-empty list")
    items = tuple(_item(entry, f"{where}: slate[{i}]", candidates) for i, entry in enumerate(slate))
    if sorted(item.position for item in items) != list(range(len(items))):
        raise DataError(f"{where}: slate positions must be 0..{len(items) - 1}, each once")
    for name in ("request_id", "policy"):
        if not isinstance(record.get(name), str):
            raise DataError(f"{where}: {name} must be a string")
    return LoggedRequest(record["request_id"], record["policy"], tuple(candidates), items)


def _item(entry: object, where: str, candidates: list[str]) -> LoggedItem:
    if not isinstance(entry, dict):
        raise DataError(f"{where} must be an object")
    if entry.get("item_id") not in candidates:
        raise DataError(f"{where}.item_id {entry.get('item_id')!r} is not among the candidates")
    position, propensity, reward = entry.get("position"), entry.get("propensity"), entry.get("reward")
    if not isinstance(position, int) or isinstance(position, bool) or position < 0:
        raise DataError(f"{where}.position must be an integer >= 0")
    if not _finite(propensity) or not 0 < propensity <= 1:
        raise DataError(f"{where}.propensity must be a number in (0, 1]")
    if not _finite(reward) or reward < 0:
        raise DataError(f"{where}.reward must be a number >= 0")
    return LoggedItem(entry["item_id"], position, float(propensity), float(reward))


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


# ------------------------------------------------------------------------------------------------ targets


def greedy_target(n: int, k: int) -> np.ndarray:
    """The plain ranking: candidate j at position j."""
    return np.eye(n, k)


def uniform_target(n: int, k: int) -> np.ndarray:
    """A uniformly random slate of the top N."""
    return uniform_capped_matrix(n, k, min(k, n - k))


def epsilon_target(epsilon: float, budget: float) -> TargetMatrix:
    """Epsilon-greedy around the plain ranking (its behaviour before any feedback), within the budget."""
    return lambda n, k: epsilon_matrix(np.arange(k), n, k, epsilon, outsider_cap(k, budget, n))


# ------------------------------------------------------------------------------------------------ estimates


def estimate(requests: Sequence[LoggedRequest], target: TargetMatrix) -> Estimate:
    """IPS and SNIPS of the target's expected reward per request."""
    if not requests:
        raise ValueError("no logged requests to estimate from")
    values, weights = np.empty(len(requests)), np.empty(len(requests))
    for i, request in enumerate(requests):
        matrix = target(len(request.candidates), len(request.slate))
        index = {item: j for j, item in enumerate(request.candidates)}
        w = np.array([matrix[index[it.item_id], it.position] / it.propensity for it in request.slate])
        values[i] = float(w @ np.array([it.reward for it in request.slate]))
        weights[i] = float(w.sum()) / len(request.slate)
    n = len(requests)
    ips = float(values.mean())
    ips_se = float(values.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    mean_weight = float(weights.mean())
    snips = ips / mean_weight if mean_weight > 0 else 0.0
    linear = (values - snips * weights) / mean_weight if mean_weight > 0 else values
    snips_se = float(linear.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    return Estimate(ips, ips - Z95 * ips_se, ips + Z95 * ips_se, snips, snips - Z95 * snips_se,
                    snips + Z95 * snips_se, n, mean_weight)

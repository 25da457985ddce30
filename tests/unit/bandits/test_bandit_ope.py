"""IPS / SNIPS on a hand-made world, and the log reader's errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hyperrec.errors import DataError
from hyperrec.online.bandits.ope import (
    LoggedItem,
    LoggedRequest,
    estimate,
    greedy_target,
    read_log,
    uniform_target,
)
from hyperrec.online.bandits.slates import sample_uniform_capped, uniform_capped_matrix

CANDIDATES = ("a", "b", "c", "d")
#: P(click) of each candidate at each of 2 positions.
CLICK = np.array([[0.5, 0.3], [0.4, 0.2], [0.1, 0.05], [0.9, 0.6]])


def _uniform_log(requests: int, seed: int) -> list[LoggedRequest]:
    rng = np.random.default_rng(seed)
    propensity = uniform_capped_matrix(4, 2, 2)
    log = []
    for i in range(requests):
        slate = sample_uniform_capped(4, 2, 2, rng)
        log.append(LoggedRequest(f"r{i}", "random", CANDIDATES, tuple(
            LoggedItem(CANDIDATES[j], p, float(propensity[j, p]), float(rng.random() < CLICK[j, p]))
            for p, j in enumerate(slate))))
    return log


def test_ips_of_greedy_from_a_uniform_log_recovers_greedys_clicks() -> None:
    found = estimate(_uniform_log(8000, seed=1), greedy_target)
    truth = CLICK[0, 0] + CLICK[1, 1]
    assert found.ips_low <= truth <= found.ips_high
    assert found.snips_low <= truth <= found.snips_high


def test_estimating_the_logging_policy_itself_has_weight_one() -> None:
    log = _uniform_log(2000, seed=2)
    found = estimate(log, uniform_target)
    assert found.mean_weight == pytest.approx(1.0)
    observed = np.mean([sum(item.reward for item in r.slate) for r in log])
    assert found.ips == pytest.approx(observed)


def _write(tmp_path: Path, line: str) -> Path:
    path = tmp_path / "log.jsonl"
    path.write_text('{"request_id":"r0","policy":"p","candidates":["a","b"],'
                    '"slate":[{"item_id":"a","position":0,"propensity":0.5,"reward":1}]}\n' + line + "\n")
    return path


@pytest.mark.parametrize(("line", "message"), [
    ("not json", "log.jsonl:2: not JSON"),
    ('{"request_id":"r","policy":"p","candidates":[],"slate":[]}', "log.jsonl:2: candidates must be"),
    ('{"request_id":"r","policy":"p","candidates":["a"],"slate":[{"item_id":"z","position":0,"propensity":1,'
     '"reward":0}]}', r"slate\[0\].item_id 'z' is not among the candidates"),
    ('{"request_id":"r","policy":"p","candidates":["a"],"slate":[{"item_id":"a","position":0,"propensity":0,'
     '"reward":0}]}', r"slate\[0\].propensity must be a number in \(0, 1\]"),
    ('{"request_id":"r","policy":"p","candidates":["a","b"],"slate":[{"item_id":"a","position":1,'
     '"propensity":1,"reward":0}]}', "slate positions must be 0..0"),
])
def test_a_bad_log_line_is_named(tmp_path: Path, line: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        read_log(_write(tmp_path, line))

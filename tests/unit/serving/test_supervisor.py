"""The supervisor's policy (issue 11, finding 4): restarts with doubling back-off, a stable run resets the
count, and a child that keeps dying ends ``hyperrec serve`` non-zero. Driven by a fake clock: no waiting."""

import pytest

from hyperrec.online.settings import SupervisorConfig
from hyperrec.serving.supervisor import GaveUp, Supervisor


class FakeChildren:
    """Children that die whenever the test says so; records restarts."""

    def __init__(self):
        self.dead: dict[str, int] = {}
        self.restarts: list[str] = []

    def exited(self):
        return dict(self.dead)

    def restart(self, name):
        self.restarts.append(name)
        self.dead.pop(name, None)

    def log_tail(self, role, chars=2000):
        return f"last lines of {role}.log"


class Clock:
    def __init__(self):
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.slept.append(seconds)
        self.now += seconds


POLICY = SupervisorConfig(max_restarts=3, backoff_initial_s=0.5, backoff_max_s=1.5, stable_after_s=60)


def supervisor(children, clock):
    return Supervisor(children, POLICY, clock=clock, sleep=clock.sleep)


def test_a_dead_predictor_is_restarted_with_doubling_capped_back_off_then_serve_gives_up():
    children, clock = FakeChildren(), Clock()
    sup = supervisor(children, clock)
    for _ in range(3):
        children.dead["predictor"] = -9
        sup.check()
    assert children.restarts == ["predictor"] * 3
    assert clock.slept == [0.5, 1.0, 1.5]
    children.dead["predictor"] = -9
    with pytest.raises(
        GaveUp, match=r"predictor exited \(code -9\) after 3 restarts[\s\S]*last lines of predictor"
    ):
        sup.check()


def test_a_child_that_ran_stably_starts_its_count_afresh():
    children, clock = FakeChildren(), Clock()
    sup = supervisor(children, clock)
    for _ in range(3):
        children.dead["transformer"] = 1
        sup.check()
    clock.now += 61  # ran longer than stable_after_s since its last restart
    children.dead["transformer"] = 1
    sup.check()
    assert children.restarts == ["transformer"] * 4 and clock.slept[-1] == 0.5


def test_living_children_are_left_alone():
    children, clock = FakeChildren(), Clock()
    supervisor(children, clock).check()
    assert children.restarts == [] and clock.slept == []


def test_a_predictor_that_dies_while_the_transformer_starts_fails_the_start_at_once(demo_bundle, tmp_path):
    """The transformer stays "not ready" without its predictor, and the supervisor only runs after start-up:
    waiting out the timeout would leave the dead predictor unrestarted (it hung ``hyperrec serve`` in CI)."""
    import subprocess
    import sys

    from hyperrec.errors import BundleError
    from hyperrec.online.settings import ServingConfig
    from hyperrec.serving.local import LocalServers

    servers = LocalServers(demo_bundle, ServingConfig(), log_dir=tmp_path, startup_timeout_s=600)
    (tmp_path / "predictor.log").write_text("killed by the test\n")
    servers._procs = {
        "predictor": subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"]),
        "transformer": subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]),
    }
    servers._procs["predictor"].wait()
    try:
        with pytest.raises(BundleError, match="the predictor exited with code 3 while the transformer was "
                                              "starting:\nkilled by the test"):
            servers._wait_ready("transformer", "http://127.0.0.1:9/never")  # port 9: nothing answers
    finally:
        servers._procs["transformer"].kill()
        servers._procs["transformer"].wait()

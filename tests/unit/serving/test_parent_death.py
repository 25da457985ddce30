"""A served role dies with the process that started it (``serving/parent_death.py``), set up in the child.

The children of ``hyperrec serve`` used to do this in a ``preexec_fn`` between fork and exec, where Python
code can deadlock when the parent has threads: a restarted predictor then never came up.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from hyperrec.serving.parent_death import PARENT_PID_ENV, parent_env

CHILD = (
    "from hyperrec.serving.parent_death import die_with_parent; die_with_parent(); "
    "import time; time.sleep(60)"
)


def test_a_child_whose_parent_is_already_gone_exits_at_once():
    env = {**os.environ, PARENT_PID_ENV: "1"}  # init is not its parent: the named parent has died
    child = subprocess.run([sys.executable, "-c", CHILD], env=env, timeout=60)
    assert child.returncode == 1


def test_a_child_without_a_named_parent_is_left_alone():
    env = {k: v for k, v in os.environ.items() if k != PARENT_PID_ENV}
    script = "from hyperrec.serving.parent_death import die_with_parent; die_with_parent(); print('running')"
    child = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert child.returncode == 0 and child.stdout.strip() == "running"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux only")
def test_a_child_gets_sigterm_when_its_parent_is_killed_outright():
    parent_script = textwrap.dedent(f"""
        import subprocess, sys, time
        from hyperrec.serving.parent_death import parent_env
        import os
        child = subprocess.Popen([sys.executable, "-c", {CHILD!r}], env={{**os.environ, **parent_env()}})
        print(child.pid, flush=True)
        time.sleep(60)
    """)
    parent = subprocess.Popen([sys.executable, "-c", parent_script], stdout=subprocess.PIPE, text=True)
    child_pid = int(parent.stdout.readline())
    # Killed before or after the child asked for the signal: either its check or the signal ends it.
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    for _ in range(300):
        try:
            os.kill(child_pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.kill(child_pid, signal.SIGKILL)
        pytest.fail("the child outlived its killed parent")


def test_parent_env_names_this_process():
    assert parent_env() == {PARENT_PID_ENV: str(os.getpid())}

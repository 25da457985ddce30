"""The code passes the linter configured in pyproject.toml, so that `make test` (what CI runs) keeps `main`
lint-clean; `make lint` runs the same check on its own."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINTED = ("src", "components", "pipelines", "serving", "tests")  # the folders `make lint` names


def test_ruff_finds_nothing_in_the_linted_folders() -> None:
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", *LINTED], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr

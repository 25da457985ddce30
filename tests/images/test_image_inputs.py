"""What the images are built from, checked without building them (fast guards for the image test)."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from image_helpers import REPO_ROOT

HEAVY = ("torch", "transformers", "kfp", "mlflow", "evidently")


def _requirement_lines(path) -> list[str]:
    lines = (line.strip() for line in path.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def test_serving_requirements_are_verbatim_pyproject_dependencies():
    """The serving image installs these (pinned by requirements.lock); none may drift from pyproject."""
    dependencies = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    serving = _requirement_lines(REPO_ROOT / "serving" / "requirements.txt")
    assert serving and set(serving) <= set(dependencies), sorted(set(serving) - set(dependencies))
    assert not [line for line in serving if line.split("[")[0].split("=")[0].split(">")[0] in HEAVY]


def test_the_transformer_entry_point_imports_no_training_stack():
    """`python -m hyperrec.serving transformer` must start where torch, transformers and kfp are absent."""
    script = (
        "import sys, hyperrec.serving.__main__, hyperrec.serving.server, hyperrec.config, "
        "hyperrec.data.pseudonymize; "
        f"print(*sorted(m for m in {HEAVY!r} if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout.split() == []

"""Shared test fixtures."""

from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
TEST_PSEUDONYM_KEY = "unit-test-pseudonym-key"


@pytest.fixture
def fixtures_dir() -> Path:
    """tests/fixtures: small files in the real input formats."""
    return FIXTURES


@pytest.fixture
def pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> str:
    """Set the pseudonym HMAC key through its default env var, so no key file is written to $HOME."""
    monkeypatch.setenv("HYPERREC_PSEUDONYM_KEY", TEST_PSEUDONYM_KEY)
    return TEST_PSEUDONYM_KEY


# --- tests must write only under tmp_path: find the ones that write into the repository
# -------------------------
REPO = Path(__file__).resolve().parents[1]
#: Where a test that forgets tmp_path leaves files: the default output folder and MLflow's ./mlruns.
REPO_OUTPUTS = (REPO / "outputs", REPO / "outputs" / "mlartifacts", REPO / "outputs" / "mlflow.db",
                REPO / "outputs" / "latest", REPO / "mlruns")
_WROTE_INTO_REPO: list[str] = []


def _repo_output_state() -> tuple[tuple[bool, int], ...]:
    return tuple((path.exists(), path.stat().st_mtime_ns if path.exists() else 0) for path in REPO_OUTPUTS)


@pytest.fixture(autouse=True)
def _no_writes_into_the_repository(request: pytest.FixtureRequest):
    """Record a test during which outputs/ or mlruns/ of the repository changed (listed after the run).

    Not a failure: `make demo` running at the same time writes there too; the list names the suspects.
    """
    before = _repo_output_state()
    yield
    if _repo_output_state() != before:
        _WROTE_INTO_REPO.append(request.node.nodeid)


def pytest_terminal_summary(terminalreporter) -> None:
    if _WROTE_INTO_REPO:
        terminalreporter.write_sep("=", "repository outputs/ or mlruns/ changed during these tests")
        for nodeid in _WROTE_INTO_REPO:
            terminalreporter.write_line(nodeid)

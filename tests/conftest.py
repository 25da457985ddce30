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

"""The generated dashboard and alerts: committed copies up to date, rules accepted and firing in promtool.

promtool is Debian's ``prometheus`` package (``make test`` installs it when missing). The PrometheusRule
custom resource cannot be loaded into Prometheus as it is: its ``spec`` is a rule file, which is what the
Prometheus Operator writes for Prometheus and what promtool checks here.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from deploy_render import REPO_ROOT, Build

from hyperrec.observability.__main__ import OUTPUTS, write_outputs
from hyperrec.observability.dashboard import UID

PROMTOOL_TESTS = Path(__file__).parent / "promtool" / "hyperrec_alerts_test.yaml"


@pytest.fixture(scope="module")
def promtool() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        pytest.skip("promtool is not installed: apt-get install prometheus (the Makefile's test target does)")
    return binary


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def _rule_files(all_builds: list[Build]) -> dict[str, dict]:
    """Every distinct PrometheusRule spec of the renders, keyed by a build that has it."""
    specs: dict[str, dict] = {}
    for build in all_builds:
        for obj in build.objects:
            if obj["kind"] == "PrometheusRule":
                specs.setdefault(
                    json.dumps(obj["spec"], sort_keys=True), {"build": build.name, **obj["spec"]}
                )
    return {spec.pop("build"): spec for spec in specs.values()}


def test_the_committed_dashboard_and_rules_are_what_the_code_generates(tmp_path):
    write_outputs(tmp_path)
    stale = [
        relative for relative in OUTPUTS
        if (tmp_path / relative).read_text() != (REPO_ROOT / relative).read_text()
    ]
    assert not stale, f"regenerate with `make observability` and commit: {stale}"


def test_every_rendered_prometheus_rule_passes_promtool_check_rules(all_builds, promtool, tmp_path):
    rule_files = _rule_files(all_builds)
    assert len(rule_files) == 1, f"kustomize and Helm render different rules: {sorted(rule_files)}"
    for name, spec in rule_files.items():
        path = tmp_path / "rules.yaml"
        path.write_text(yaml.safe_dump(spec))
        result = _run([promtool, "check", "rules", str(path)])
        assert result.returncode == 0, f"{name}:\n{result.stdout}{result.stderr}"
        assert "SUCCESS: 9 rules found" in result.stdout, result.stdout


def test_the_alerts_fire_on_synthetic_series(all_builds, promtool, tmp_path):
    ((_, spec),) = _rule_files(all_builds).items()
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(spec))
    shutil.copy(PROMTOOL_TESTS, tmp_path / PROMTOOL_TESTS.name)
    result = _run([promtool, "test", "rules", str(tmp_path / PROMTOOL_TESTS.name)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_rejects_a_broken_rule(promtool, tmp_path):
    """The check is real: an expression with a typo fails it."""
    path = tmp_path / "rules.yaml"
    path.write_text(
        yaml.safe_dump({"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "sum(rate(x[5m]"}]}]})
    )
    assert _run([promtool, "check", "rules", str(path)]).returncode != 0


def test_the_dashboard_configmaps_hold_the_generated_dashboard(all_builds):
    expected = json.loads((REPO_ROOT / "manifests/components/monitoring/grafana-dashboard.json").read_text())
    found = 0
    for build in all_builds:
        for obj in build.objects:
            if (
                obj["kind"] == "ConfigMap"
                and obj["metadata"].get("labels", {}).get("grafana_dashboard") == "1"
            ):
                assert json.loads(obj["data"]["hyperrec.json"]) == expected, build.name
                assert expected["uid"] == UID
                found += 1
    assert found >= 4

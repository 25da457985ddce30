"""checkov on everything the manifests render: no failed check except the justified skips in
checkov_skips.yaml, and no skip that no longer matches a finding.

checkov runs once over one file per deployable render: every overlay (which between them use every
component; prod + canary too) and every Helm scenario with its test hooks, plus a digest-pinned Helm
render that shows why the image skips are safe to take. The namespace-less base and components alone are
building blocks, not deployments, so they are checked through the overlays.

checkov's dependencies conflict with the project's lock (it pins older packaging, cachetools and
importlib-metadata), so it lives in a virtualenv of its own: HYPERREC_CHECKOV names its executable; else
`checkov` on PATH, beside this Python, or in .cache/checkov-venv (see docs/DEPLOY.md, "Tests").
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_render import REPO_ROOT, deep_merge, manifests_of, render_chart

SKIPS_FILE = Path(__file__).with_name("checkov_skips.yaml")
DIGEST_FILE = "helm-digest-pinned.yaml"


def _checkov_binary() -> str | None:
    candidates = [
        os.environ.get("HYPERREC_CHECKOV"),
        shutil.which("checkov"),
        str(Path(sys.executable).parent / "checkov"),
        str(REPO_ROOT / ".cache" / "checkov-venv" / "bin" / "checkov"),
    ]
    return next((c for c in candidates if c and Path(c).is_file() and os.access(c, os.X_OK)), None)


@pytest.fixture(scope="module")
def findings(all_builds, helm, tmp_path_factory) -> list[dict[str, Any]]:
    """checkov's failed checks as dicts with check_id, resource and file (the render's name)."""
    binary = _checkov_binary()
    if binary is None:
        pytest.skip(
            "checkov is not installed (pip install checkov==3.3.30 into its own venv; set HYPERREC_CHECKOV)"
        )
    directory = tmp_path_factory.mktemp("checkov")
    for build in all_builds:
        if build.source == "kustomize" and not build.name.startswith("overlays/"):
            continue
        name = build.name.replace("/", "-").replace("+", "-").replace(":", "-")
        (directory / f"{build.source}-{name}.yaml").write_text(
            yaml.safe_dump_all(build.objects, sort_keys=False)
        )
    pinned = deep_merge(
        yaml.safe_load((REPO_ROOT / "helm/hyperrec/ci/prod-values.yaml").read_text()),
        {"image": {"digest": "sha256:" + "0" * 64, "pullPolicy": "Always"},
         "servingImage": {"digest": "sha256:" + "1" * 64}},
    )
    (directory / DIGEST_FILE).write_text(
        yaml.safe_dump_all(manifests_of(render_chart(helm, pinned, "hyperrec")))
    )

    result = subprocess.run(
        [
            binary,
            "--directory",
            str(directory),
            "--framework",
            "kubernetes",
            "--output",
            "json",
            "--quiet",
            "--skip-download",
            "--compact",
        ],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    if result.returncode not in (0, 1):  # 1 means "some checks failed"; anything else is checkov failing
        pytest.fail(f"checkov exited {result.returncode}:\n{result.stderr[-3000:]}")
    reports = json.loads(result.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    assert any(r["summary"]["passed"] for r in reports), "checkov checked nothing"
    assert not any(r["summary"]["parsing_errors"] for r in reports), "checkov could not parse a render"
    return [
        {"check_id": f["check_id"], "resource": f["resource"], "file": f["file_path"].lstrip("/")}
        for report in reports
        for f in report["results"]["failed_checks"]
    ]


def _skips() -> list[dict[str, Any]]:
    return yaml.safe_load(SKIPS_FILE.read_text())


def _skipped(finding: dict[str, Any], skip: dict[str, Any]) -> bool:
    return finding["check_id"] == skip["check"] and any(
        fnmatch.fnmatchcase(finding["resource"], pattern) for pattern in skip["resources"]
    )


def test_every_skip_is_justified():
    for skip in _skips():
        assert {"check", "name", "resources", "reason"} <= skip.keys(), skip
        assert len(skip["reason"].split()) >= 10, f"{skip['check']}: say why"


def test_no_failed_check_outside_the_skip_list(findings):
    unexpected = [f for f in findings if not any(_skipped(f, s) for s in _skips())]
    assert not unexpected, "\n".join(f"{f['check_id']} {f['resource']} ({f['file']})" for f in unexpected)


def test_no_stale_skip(findings):
    stale = [s["check"] for s in _skips() if not any(_skipped(f, s) for f in findings)]
    assert not stale, f"skips that match no finding any more, remove them: {stale}"


def test_pinning_the_digest_clears_the_image_checks(findings):
    pinned = [f for f in findings if f["file"] == DIGEST_FILE]
    assert not [f for f in pinned if f["check_id"] in {"CKV_K8S_43", "CKV_K8S_15"}], pinned

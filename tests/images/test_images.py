"""The container images `make image` builds, checked inside the images themselves.

Components image: `hyperrec --help`, and the data_prep KFP component run exactly as KFP's launcher runs it
(the compiled pipeline's command and args, `{{$}}` replaced by an executor input built from the pipeline IR)
on the tiny MovieLens fixture, as the image's non-root user. Serving image: the transformer entry point
answers a request on a demo bundle with torch not even importable. Both: non-root user, OCI labels, pinned
versions, and sizes within the targets (written to image_sizes.json in the test's tmp dir).
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from image_helpers import (
    COMPONENTS_MAX_BYTES,
    REPO_ROOT,
    SERVING_MAX_BYTES,
    container_root,
    give_to_user,
    package_version,
    run_in,
)
from kfp_launch import data_prep_launch

# A cold first build (base, wheelhouse, both images) takes about 10 minutes here; cached ones under a minute.
pytestmark = [pytest.mark.slow, pytest.mark.image, pytest.mark.timeout(1800)]

FIXTURE = REPO_ROOT / "tests" / "fixtures" / "movielens_tiny"
#: Distributions a venv brings or the build needs, which requirements.lock does not list.
UNLOCKED = {"hyperrec", "torch", "pip", "setuptools", "wheel"}


def test_components_image_runs_hyperrec_help(images):
    components, _ = images
    with container_root(components) as root:
        done = run_in(root, components, ["hyperrec", "--help"])
    assert done.returncode == 0, done.stderr
    assert "usage: hyperrec" in done.stdout


def test_data_prep_component_runs_in_the_components_image_as_kfp_launcher_would(images, tmp_path):
    components, _ = images
    with container_root(components) as root:
        workdir = root / "tmp" / "image-test"
        shutil.copytree(FIXTURE, workdir / "movielens_tiny")
        give_to_user(workdir, components)
        launch = data_prep_launch(tmp_path, data_dir=Path("/tmp/image-test"))
        assert launch.image == components.reference  # the compiled pipeline names the image built here
        done = run_in(root, components, launch.argv)
        assert done.returncode == 0, done.stderr[-4000:]

        metadata = json.loads((root / launch.output_file.lstrip("/")).read_text())
        prepared = root / launch.artifact_paths["prepared"].lstrip("/")
        report = root / launch.artifact_paths["report"].lstrip("/")
        assert sorted(metadata["artifacts"]) == ["prepared", "report"]
        for name, uri in launch.artifact_uris.items():
            assert metadata["artifacts"][name]["artifacts"][0]["uri"] == uri
        assert prepared.stat().st_uid == 10001  # written by the image's user, not root
        from hyperrec.data.prepared import REPORT_MD, PreparedData

        data = PreparedData(prepared)
        movies = {line.split(",", 1)[0] for line in (FIXTURE / "movies.csv").read_text().splitlines()[1:]}
        assert 0 < data.n_items <= len(movies)
        assert len(data.interactions) > 0 and all(len(data.split(s)) > 0 for s in ("train", "test"))
        assert report.read_text() == (prepared / REPORT_MD).read_text() and report.stat().st_size > 0


def test_images_run_as_the_manifests_non_root_user(images):
    for image in images:
        uid = image.user.split(":", 1)[0]
        assert uid.isdigit() and int(uid) != 0, (image.reference, image.user)
        assert image.user == "10001:10001", image.reference  # runAsUser / runAsGroup in manifests and chart


def test_images_carry_oci_labels_with_version_and_revision(images):
    for image in images:
        labels = image.labels
        assert labels["org.opencontainers.image.version"] == package_version(), image.reference
        assert re.fullmatch(r"[0-9a-f]{40}|unknown", labels["org.opencontainers.image.revision"])
        assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
        assert labels["org.opencontainers.image.source"].startswith("https://")


@pytest.mark.parametrize("which", ["components", "serving"])
def test_every_installed_distribution_is_the_locked_version(images, which):
    image = images[0] if which == "components" else images[1]
    locked = {
        _normalize(name): version
        for name, version in (
            line.split("==") for line in (REPO_ROOT / "requirements.lock").read_text().split()
        )
    }
    script = "import importlib.metadata as m; print(*(f'{d.name}=={d.version}' for d in m.distributions()))"
    with container_root(image) as root:
        done = run_in(root, image, ["python", "-c", script])
    assert done.returncode == 0, done.stderr
    installed = dict(item.split("==") for item in done.stdout.split())
    unlocked = {name: v for name, v in installed.items() if _normalize(name) not in locked}
    assert {_normalize(name) for name in unlocked} <= UNLOCKED, unlocked
    wrong = {name: (v, locked[_normalize(name)]) for name, v in installed.items()
             if _normalize(name) in locked and locked[_normalize(name)] != v}
    assert not wrong, wrong
    assert installed["hyperrec"] == package_version()
    if which == "components":
        assert installed["torch"].endswith("+cpu")


def test_serving_image_answers_as_the_transformer_without_torch(images, tmp_path):
    from hyperrec.export.tiny import build_demo_bundle

    _, serving = images
    with container_root(serving) as root:
        workdir = root / "tmp" / "image-test"
        build_demo_bundle(workdir / "bundle", n_items=40, max_history=8, dynamo=False)
        shutil.copy(Path(__file__).with_name("serving_smoke.py"), workdir)
        give_to_user(workdir, serving)
        done = run_in(root, serving, ["python", "/tmp/image-test/serving_smoke.py", "/tmp/image-test/bundle",
                                      "/tmp/image-test/feedback"])
    assert done.returncode == 0, done.stderr[-4000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["importable"] == dict.fromkeys(result["importable"], False), result["importable"]
    assert result["imported"] == []
    assert result["status"] == 200, result
    answer = result["answer"]
    assert answer["degraded"] is True and len(answer["recommendations"]) == 3  # no predictor: popularity


def test_image_sizes_are_within_the_targets(images, tmp_path):
    components, serving = images
    sizes = {image.reference: image.size for image in images}
    report = tmp_path / "image_sizes.json"
    report.write_text(json.dumps(sizes, indent=2))
    print(
        yaml.safe_dump({ref: f"{size / 1e6:.0f} MB" for ref, size in sizes.items()}), f"(written to {report})"
    )
    assert components.size <= COMPONENTS_MAX_BYTES, sizes
    assert serving.size <= SERVING_MAX_BYTES, sizes


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


"""Every importable folder ships in the wheel: the explicit package list in pyproject.toml is complete."""

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MAPPED = {
    "src/hyperrec": "hyperrec",
    "components": "hyperrec.components",
    "pipelines": "hyperrec.pipelines",
    "serving": "hyperrec.serving",
}


def _packages_on_disk() -> set[str]:
    found = set()
    for folder, prefix in MAPPED.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            if "__pycache__" in init.parts:
                continue
            relative = init.parent.relative_to(base).parts
            found.add(".".join((prefix, *relative)))
    return found


def test_every_package_folder_is_listed_in_pyproject():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    assert _packages_on_disk() <= listed, sorted(_packages_on_disk() - listed)


def test_listed_packages_exist():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    assert listed <= _packages_on_disk(), sorted(listed - _packages_on_disk())

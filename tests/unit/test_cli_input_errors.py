"""Every subcommand that reads a user's file answers a wrong, missing or empty one with one line and exit 2.

Issue 11, finding 11: `hyperrec drift --items items.csv` ended in a pyarrow traceback ("Parquet magic bytes
not found"). Each case runs the real CLI entry point at --log-level WARNING, so the error is the only line a
user sees on stderr; it must name the file and no traceback may follow.
"""

from pathlib import Path

import pytest

from hyperrec.cli import main

FIXTURES = Path(__file__).parents[1] / "fixtures"
PREPARED_TABLES = (
    "items.parquet",
    "interactions.parquet",
    "train.parquet",
    "validation.parquet",
    "test.parquet",
    "segments.parquet",
    "examples.parquet",
    "profiles.parquet",
)


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pseudonym_key: str) -> Path:
    """Good and bad input files in tmp_path, which is also the working directory (default outputs land
    there)."""
    monkeypatch.chdir(tmp_path)
    for name in ("items.csv", "interactions.csv"):
        (tmp_path / name).write_text((FIXTURES / "generic" / name).read_text())
    (tmp_path / "not_parquet.parquet").write_text("user_id,item_id\nu1,i1\n")
    (tmp_path / "empty.csv").write_bytes(b"")
    (tmp_path / "empty.npy").write_bytes(b"")
    (tmp_path / "bad.yaml").write_text("data: [unclosed\n")
    (tmp_path / "no_segments").mkdir()
    (tmp_path / "empty_folder").mkdir()
    corrupt = tmp_path / "corrupt_prepared"
    corrupt.mkdir()
    for name in PREPARED_TABLES:
        (corrupt / name).write_text("not parquet")
    return tmp_path


GENERIC = ["--set", "data.format=generic", "--set", "data.items_path=items.csv"]
DRIFT = [
    "drift",
    "--reference",
    "interactions.csv",
    "--current",
    "interactions.csv",
    "--output-dir",
    "report",
]

CASES = {
    # (argv, the file the one line must name)
    "data-prep interactions wrong format": (
        ["data-prep", *GENERIC, "--set", "data.interactions_path=not_parquet.parquet"],
        "not_parquet.parquet",
    ),
    "data-prep interactions missing": (
        ["data-prep", *GENERIC, "--set", "data.interactions_path=missing.csv"],
        "missing.csv",
    ),
    "data-prep interactions empty": (
        ["data-prep", *GENERIC, "--set", "data.interactions_path=empty.csv"],
        "empty.csv",
    ),
    "data-prep config not YAML": (["data-prep", "--config", "bad.yaml"], "bad.yaml"),
    "data-prep config missing": (["data-prep", "--config", "missing.yaml"], "missing.yaml"),
    "drift items wrong format": ([*DRIFT, "--items", "not_parquet.parquet"], "not_parquet.parquet"),
    "drift items missing": ([*DRIFT, "--items", "missing.parquet"], "missing.parquet"),
    "drift items empty": ([*DRIFT, "--items", "empty.csv"], "empty.csv"),
    "drift items of the wrong kind": ([*DRIFT, "--items", "interactions.csv"], "interactions.csv"),
    "drift reference wrong format": (
        [
            "drift",
            "--reference",
            "not_parquet.parquet",
            "--current",
            "interactions.csv",
            "--output-dir",
            "report",
        ],
        "not_parquet.parquet",
    ),
    "drift reference empty": (
        ["drift", "--reference", "empty.csv", "--current", "interactions.csv", "--output-dir", "report"],
        "empty.csv",
    ),
    "drift current missing": (
        ["drift", "--reference", "interactions.csv", "--current", "missing.csv", "--output-dir", "report"],
        "missing.csv",
    ),
    "drift current without event columns": (
        ["drift", "--reference", "interactions.csv", "--current", "items.csv", "--output-dir", "report"],
        "items.csv",
    ),
    "drift embeddings wrong format": ([*DRIFT, "--item-embeddings", "items.csv"], "items.csv"),
    "drift embeddings empty": ([*DRIFT, "--item-embeddings", "empty.npy"], "empty.npy"),
    "drift embeddings missing": ([*DRIFT, "--item-embeddings", "missing.npy"], "missing.npy"),
    "drift predictions wrong format": (
        [*DRIFT, "--reference-predictions", "not_parquet.parquet"],
        "not_parquet.parquet",
    ),
    "bench quality prepared folder empty": (
        ["bench", "quality", "--prepared", "empty_folder", "--output-dir", "b"],
        "empty_folder",
    ),
    "bench quality prepared tables corrupt": (
        ["bench", "quality", "--prepared", "corrupt_prepared", "--output-dir", "b"],
        "corrupt_prepared",
    ),
    "bench cold-start prepared missing": (
        ["bench", "cold-start", "--prepared", "missing", "--output-dir", "b"],
        "missing",
    ),
    "bench debian-dataset wrong format": (
        ["bench", "debian-dataset", "--packages", "items.csv", "--output-dir", "d"],
        "items.csv",
    ),
    "bench debian-dataset missing": (
        ["bench", "debian-dataset", "--packages", "missing", "--output-dir", "d"],
        "missing",
    ),
    "bench serve bundle empty": (["bench", "serve", "--bundle", "empty_folder"], "empty_folder"),
    "deploy config not YAML": (
        ["deploy", "--config", "bad.yaml", "--dry-run", "hyperrec-ranker@champion"],
        "bad.yaml",
    ),
    "canary config not YAML": (["canary", "step", "--config", "bad.yaml"], "bad.yaml"),
    "ab analyze a file, not a folder": (["ab", "analyze", "items.csv"], "items.csv"),
    "ab analyze a folder without segments": (["ab", "analyze", "no_segments"], "no_segments"),
}


@pytest.mark.parametrize(("argv", "named"), list(CASES.values()), ids=list(CASES))
def test_a_bad_input_file_is_one_line_naming_it_and_exit_2(files, capsys, argv, named):
    command = argv[:2] if argv[0] in {"bench", "canary", "ab"} else argv[:1]
    rest = argv[len(command):]
    assert main([*command, "--log-level", "WARNING", *rest]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert named in lines[0] and "ERROR" in lines[0]
    assert "Traceback" not in err


def test_drift_takes_the_generic_items_csv_for_the_item_index(files, capsys):
    assert main([*DRIFT, "--items", "items.csv"]) == 0
    assert "drift detected" in capsys.readouterr().out

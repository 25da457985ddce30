"""The recipe resolves the next-item model's ``auto`` settings from the data's shape, never from a metric."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from modeling_fixtures import cyclic_sequences, write_prepared

from hyperrec.config import HyperrecConfig, config_from_yaml
from hyperrec.data.report import PrepReport
from hyperrec.modeling.recipe import DataShape, resolve_next_item
from hyperrec.modeling.settings import NextItemSettings


def shape(n_items: int, has_timestamps: bool = True) -> DataShape:
    return DataShape(n_items=n_items, n_train_events=10 * n_items, has_timestamps=has_timestamps)


def test_small_catalogue_with_time_keeps_the_full_softmax_in_time_order() -> None:
    resolved, reasons = resolve_next_item(NextItemSettings(), shape(9_742))
    assert (resolved.loss, resolved.sequence_order) == ("full_softmax", "as_given")
    assert set(reasons) == {"loss", "sequence_order"}


def test_large_catalogue_without_timestamps_samples_negatives_and_ignores_order() -> None:
    resolved, reasons = resolve_next_item(NextItemSettings(), shape(63_440, has_timestamps=False))
    assert (resolved.loss, resolved.sequence_order) == ("sampled_softmax", "shuffled")
    assert "63440 items" in reasons["loss"] and "no timestamps" in reasons["sequence_order"]


def test_the_threshold_is_a_setting_and_end_to_end_training_always_samples() -> None:
    assert (
        resolve_next_item(NextItemSettings(full_softmax_max_items=100), shape(101))[0].loss
        == "sampled_softmax"
    )
    assert (
        resolve_next_item(NextItemSettings(full_softmax_max_items=100), shape(100))[0].loss == "full_softmax"
    )
    end_to_end = NextItemSettings(finetune_item_encoder=True, token_cache=False)
    assert resolve_next_item(end_to_end, shape(50))[0].loss == "sampled_softmax"
    # over the token cache only a bounded number of items is re-encoded per step: the full softmax stays
    assert (
        resolve_next_item(NextItemSettings(finetune_item_encoder=True), shape(50))[0].loss == "full_softmax"
    )


def test_explicit_values_are_kept() -> None:
    explicit = NextItemSettings(loss="full_softmax", sequence_order="as_given")
    resolved, reasons = resolve_next_item(explicit, shape(63_440, has_timestamps=False))
    assert (resolved.loss, resolved.sequence_order) == ("full_softmax", "as_given") and reasons == {}


def test_auto_survives_the_yaml_round_trip_of_the_pipeline() -> None:
    again = config_from_yaml(HyperrecConfig().to_yaml())
    assert again.modeling.next_item.loss == "auto" and again.modeling.next_item.sequence_order == "auto"


def test_shape_reads_missing_timestamps_from_the_prepared_data(tmp_path: Path) -> None:
    data = write_prepared(tmp_path / "p", cyclic_sequences(6, 10, 5), 10)
    assert DataShape.of(data) == DataShape(n_items=10, n_train_events=18, has_timestamps=True)
    train = data.split("train").assign(timestamp=0)
    train.to_parquet(tmp_path / "p" / "train.parquet", index=False)
    assert not DataShape.of(data).has_timestamps
    report = PrepReport(sections={"split": {"method": "leave_last_out"}})  # the writer data prep uses
    report.write(tmp_path / "p" / "data_report.json", tmp_path / "p" / "data_report.md")
    assert data.split_method == "leave_last_out"
    assert DataShape.of(data).has_timestamps  # the report's split method wins
    report.sections["split"]["method"] = "random_leave_one_out"
    report.write(tmp_path / "p" / "data_report.json", tmp_path / "p" / "data_report.md")
    assert not DataShape.of(data).has_timestamps


@pytest.mark.parametrize("order", ["shuffled", "as_given"])
def test_the_fitted_model_saves_the_resolved_values(tmp_path: Path, order: str, runtime) -> None:
    from hyperrec.modeling.next_item import IDOnlyNextItemRecommender
    from hyperrec.modeling.training_settings import TrainingSettings

    data = write_prepared(tmp_path / "p", cyclic_sequences(8, 12, 6), 12)
    training = TrainingSettings(max_epochs=1, batch_size=4, unfreeze_schedule={0: 0}, max_train_seconds=None)
    model = IDOnlyNextItemRecommender(NextItemSettings(d_model=8, n_heads=1, max_seq_len=6, training=training,
                                                       sequence_order=order), runtime=runtime)
    model.fit(data, validate=lambda m: 0.0)
    model.save(tmp_path / "m")
    saved = pd.read_json(tmp_path / "m" / "model.json", typ="series")["settings"]
    assert saved["loss"] == "full_softmax" and saved["sequence_order"] == order

"""records: atomic writes, axis columns, and loading errors (full loads are tested in test_runner)."""

from __future__ import annotations

import math

import pytest

from ablation.stats import records
from ablation import spec


def test_axis_column_values():
    s = spec.loads("""
[study]
name = "a"
[grid]
train_size = [100, 500]
activation = ["relu", "tanh"]
max_norm = [0.0, 2.0]
hidden = [[8], [8, 8]]
""")
    assert records.axis_column_value(s.axis("train_size"), "500") == 500
    assert records.axis_column_value(s.axis("activation"), "tanh") == "tanh"
    assert math.isclose(records.axis_column_value(s.axis("max_norm"), "2.0"), 2.0)
    assert records.axis_column_value(s.axis("hidden"), "8-8") == "8-8"
    assert records.point_label({"a": "1", "b": "x"}) == "a=1, b=x"


def test_load_rejects_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(records.RunFolderError, match="expected a run folder written by 'ablation run'"):
        records.load(tmp_path)


def test_train_size_axis_is_one_column():
    frame = records._frame([{"trial_id": "0", "train_size": 100}], ["trial_id", "train_size", "train_size"])
    assert list(frame.columns) == ["trial_id", "train_size"]


def test_train_path_label_joins_the_path_and_xla():
    assert records.train_path_label("scan", True) == "scan+xla"
    assert records.train_path_label("keras", True) == "keras+xla"
    assert records.train_path_label("keras", False) == "keras"
    assert records.train_path_label(None, None) is None  # failed before training, or an older run

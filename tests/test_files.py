"""ablation.files: atomic, durable writes and reads that tell a damaged file from a missing one."""

from __future__ import annotations

import json
import os

import pytest

from ablation import files


def test_atomic_write_leaves_no_temporary_files_and_ordinary_permissions(tmp_path):
    target = tmp_path / "a" / "x.json"
    files.atomic_write_json(target, {"v": float("nan"), "w": [1.5, float("inf")]})
    assert json.loads(target.read_text()) == {"v": None, "w": [1.5, None]}
    assert [p.name for p in target.parent.iterdir()] == ["x.json"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert os.stat(target).st_mode & 0o777 == 0o666 & ~umask


def test_atomic_write_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / "x.json"
    files.atomic_write_json(target, {"ok": 1})
    with pytest.raises(TypeError):
        files.atomic_write_json(target, {"bad": object()})
    assert json.loads(target.read_text()) == {"ok": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_atomic_write_does_not_touch_the_process_umask(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(os, "umask", lambda mask: calls.append(mask) or 0o022)
    files.atomic_write_text(tmp_path / "x.txt", "hello")
    assert calls == [] and (tmp_path / "x.txt").read_text() == "hello"


def test_read_json_missing_default_and_damaged(tmp_path):
    assert files.read_json(tmp_path / "none.json", default={"d": 1}) == {"d": 1}
    with pytest.raises(FileNotFoundError):
        files.read_json(tmp_path / "none.json")
    (tmp_path / "empty.json").write_text("")
    (tmp_path / "cut.json").write_text('{"trial_id": "00", "status": "comp')
    with pytest.raises(files.DamagedFile, match=r"empty.json: damaged file \(empty\)$"):
        files.read_json(tmp_path / "empty.json")
    with pytest.raises(files.DamagedFile, match=r"cut.json: damaged file \(not valid JSON: .* at line 1\)$") as info:
        files.read_json(tmp_path / "cut.json", default=None)
    assert info.value.path == tmp_path / "cut.json"


def test_finite_converts_numpy_scalars_and_non_finite_floats():
    import numpy as np

    assert files.finite({"a": np.float32(0.5), "b": [np.int64(3), float("-inf")], "c": (1, np.nan)}) == \
        {"a": 0.5, "b": [3, None], "c": [1, None]}

"""ablation.base.files: atomic, durable writes and reads that tell a damaged file from a missing one."""

from __future__ import annotations

import json
import os

import pytest

from ablation.base import files


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


# ----------------------------------------------------------------------------- the folder lock

HOLD = """
import subprocess, sys, time
from ablation.base import files
lock = files.FolderLock(sys.argv[1], command="holder").acquire()
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # must not inherit the lock
print(child.pid, flush=True)
time.sleep(60)
"""


def _holder(path):
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ})
    child = int(proc.stdout.readline())
    return proc, child


def test_lock_refuses_a_second_holder_and_names_the_first(tmp_path):
    path = tmp_path / "run.lock"
    with files.FolderLock(path, command="ablation run a.toml") as lock:
        assert lock.held and json.loads(path.read_text())["pid"] == os.getpid()
        with pytest.raises(files.FolderLocked) as info:
            files.FolderLock(path).acquire()  # even in the same process: one holder
        message = str(info.value)
        assert f"pid {os.getpid()} on host" in message and "'ablation run a.toml'" in message
        assert "\n" not in message and info.value.holder["command"] == "ablation run a.toml"
    assert not path.exists()  # released: the file is gone
    with files.FolderLock(path) as again:
        assert again.took_over is None


def test_lock_of_a_killed_process_is_taken_over_and_children_never_hold_it(tmp_path):
    import signal

    path = tmp_path / "run.lock"
    proc, child = _holder(path)
    try:
        with pytest.raises(files.FolderLocked, match=rf"pid {proc.pid} on host"):
            files.FolderLock(path).acquire()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert files.pid_alive(child)  # the holder's child lives on, and does not keep the lock
        with files.FolderLock(path) as lock:
            assert lock.took_over["pid"] == proc.pid and lock.took_over["command"] == "holder"
            assert json.loads(path.read_text())["pid"] == os.getpid()
    finally:
        proc.kill()
        os.kill(child, signal.SIGKILL)


def test_stale_and_foreign_lock_files(tmp_path, monkeypatch):
    import socket
    import subprocess
    import sys

    path = tmp_path / "run.lock"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    path.write_text(json.dumps({"pid": int(dead), "host": socket.gethostname()}))
    monkeypatch.setattr(files, "_flock", lambda fd: None)  # a file system without flock: the pid decides
    with files.FolderLock(path) as lock:
        assert lock.took_over["pid"] == int(dead)
    path.write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname()}))  # a live pid
    with pytest.raises(files.FolderLocked, match=rf"pid {os.getppid()}"):
        files.FolderLock(path).acquire()
    monkeypatch.undo()
    path.write_text(json.dumps({"pid": 1, "host": "another-host"}))  # flock is free, but its host is elsewhere
    with pytest.raises(files.FolderLocked, match="pid 1 on host another-host"):
        files.FolderLock(path).acquire()
    path.write_text('{"pid": 12')  # damaged (never written by FolderLock, which writes whole): stale
    with files.FolderLock(path) as lock:
        assert lock.took_over is None


def test_stale_temporaries_are_what_a_killed_write_leaves(tmp_path):
    (tmp_path / ".result.json.0123456789ab.tmp").write_text("{")
    (tmp_path / ".hidden.tmp").write_text("")
    (tmp_path / "result.json").write_text("{}")
    assert [p.name for p in files.stale_temporaries(tmp_path)] == [".result.json.0123456789ab.tmp"]

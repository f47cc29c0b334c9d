"""Files on disk: atomic, durable writes and reads that tell a damaged file from a missing one.

Disk is the single source of truth of a run (DESIGN.md), so every file the package writes goes
through :func:`atomic_write_text`: the text goes to a temporary file in the same folder (created
with the permissions an ordinary ``open`` would give it), is flushed and fsynced, replaces the
target with ``os.replace`` and the folder is fsynced, so a reader sees the old file or the new
one, never half of one, even after a power cut. No process-wide state (the umask) is touched.

:func:`read_json` returns a default for a missing file and raises :class:`DamagedFile` for one
that exists but is not valid JSON (a write cut short by a kill before this module existed, a disk
error, a hand edit), so callers can report it instead of crashing.
"""

from __future__ import annotations

import json
import math
import os
import secrets
from pathlib import Path
from typing import Any

_MISSING = object()


class DamagedFile(ValueError):
    """A file that exists but cannot be parsed; ``path`` and ``problem`` say which and why."""

    def __init__(self, path: str | os.PathLike, problem: str) -> None:
        self.path, self.problem = Path(path), problem
        super().__init__(f"{path}: damaged file ({problem})")


def _umask() -> int:
    """The process umask, read without changing it (from /proc where available)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    return 0o022


_UMASK = _umask()


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename or a new file in ``folder`` durable (no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str, *, durable: bool = True) -> None:
    """Write ``text`` to ``path`` atomically (see the module docstring).

    Args:
        path: the target file; its folder is created when missing.
        text: the content (UTF-8).
        durable: fsync the file and its folder (off only for files that are cheap to lose).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666 & ~_UMASK)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)


def atomic_write_json(path: str | os.PathLike, data: Any, *, durable: bool = True) -> None:
    """Write ``data`` as JSON atomically; NaN and infinities become null (strict JSON)."""
    atomic_write_text(path, json.dumps(finite(data), indent=1, sort_keys=False), durable=durable)


def read_json(path: str | os.PathLike, default: Any = _MISSING) -> Any:
    """Read a JSON file.

    Args:
        path: the file.
        default: returned when the file does not exist; without it a missing file raises
            ``FileNotFoundError``.

    Raises:
        DamagedFile: the file exists but is empty, truncated or otherwise not JSON.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        if default is _MISSING:
            raise
        return default
    except (OSError, UnicodeDecodeError) as exc:
        raise DamagedFile(path, f"{type(exc).__name__}: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        problem = "empty" if not text.strip() else f"not valid JSON: {exc.msg} at line {exc.lineno}"
        raise DamagedFile(path, problem) from None


def finite(value: Any) -> Any:
    """``value`` with NaN / infinite floats as None and NumPy scalars as Python numbers (recursively)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 0) == 0:
        return finite(value.item())
    return value

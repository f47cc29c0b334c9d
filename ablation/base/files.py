"""Files on disk: atomic, durable writes, reads that tell a damaged file from a missing one, and locks.

Disk is the single source of truth of a run (DESIGN.md), so every file the package writes goes
through :func:`atomic_write_text`: the text goes to a temporary file in the same folder (created
with the permissions an ordinary ``open`` would give it), is flushed and fsynced, replaces the
target with ``os.replace`` and the folder is fsynced, so a reader sees the old file or the new
one, never half of one, even after a power cut. No process-wide state (the umask) is touched.

:func:`read_json` returns a default for a missing file and raises :class:`DamagedFile` for one
that exists but is not valid JSON (a write cut short by a kill before this module existed, a disk
error, a hand edit), so callers can report it instead of crashing.

:class:`FolderLock` makes one process the only writer of a folder: an exclusive ``flock`` on a lock
file that also says who holds it (pid, host, since, command). The kernel drops the ``flock`` when
its holder dies, however it dies, so a lock file left behind by a killed process is stale and is
taken over; where ``flock`` is not available the file's pid is checked instead (a dead pid on this
host is stale). A lock file written on another host is never taken over: it names its holder.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import math
import os
import re
import secrets
import socket
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # not on Windows: locks fall back to the pid check
    fcntl = None  # type: ignore[assignment]

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
_TMP_SUFFIX = ".tmp"
_TMP_RE = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$")  # what atomic_write_text leaves behind when it is killed


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
    tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}{_TMP_SUFFIX}"
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


def stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """The temporary files that :func:`atomic_write_text` left in ``folder`` when it was killed mid-write."""
    try:
        return sorted(p for p in Path(folder).iterdir() if _TMP_RE.match(p.name) and p.is_file())
    except OSError:
        return []


# ----------------------------------------------------------------------------- locks

class FolderLocked(RuntimeError):
    """Another live process holds the lock; ``holder`` is what its lock file says (pid, host, since, command)."""

    def __init__(self, path: str | os.PathLike, holder: dict[str, Any] | None) -> None:
        self.path, self.holder = Path(path), holder or {}
        super().__init__(f"{self.path.parent}: another process is running this study here ({describe_holder(holder)}); "
                         f"wait for it to end, or stop it (a killed process leaves a stale {self.path.name}, "
                         f"which the next run takes over)")


def describe_holder(holder: dict[str, Any] | None) -> str:
    """``pid 123 on host h since 2026-01-01T10:00:00+00:00 ('ablation run ...')`` from a lock file's content."""
    if not holder:
        return "a process that is taking the lock right now"
    text = f"pid {holder.get('pid', '?')} on host {holder.get('host', '?')}"
    if holder.get("since"):
        text += f" since {holder['since']}"
    if holder.get("command"):
        text += f", {holder['command']!r}"
    return text


def pid_alive(pid: Any) -> bool:
    """Whether a process with this pid exists on this host."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


class FolderLock:
    """An exclusive lock on a folder through a lock file (see the module docstring).

    Args:
        path: the lock file, e.g. ``<run_dir>/run.lock``.
        command: what the holder runs, shown to whoever is refused.

    Use ``with FolderLock(path): ...`` or :meth:`acquire` / :meth:`release`. The file descriptor is
    not inherited by child processes, so children never keep a lock alive after their parent died.
    """

    def __init__(self, path: str | os.PathLike, command: str | None = None) -> None:
        self.path = Path(path)
        self.info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command or ""}
        self._fd: int | None = None
        self.took_over: dict[str, Any] | None = None  # the stale holder this lock replaced, if any

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> FolderLock:
        """Take the lock.

        Raises:
            FolderLocked: a live process (or one on another host) holds it.
        """
        for _ in range(10):  # a holder may release (unlink) the file between our open and our flock
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
            try:
                flocked = _flock(fd)
                if flocked is False:
                    raise FolderLocked(self.path, _read_holder(fd))
                try:
                    same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
                except FileNotFoundError:
                    same = False
                if not same:
                    os.close(fd)
                    continue
                holder = _read_holder(fd)
                if holder and not _stale(holder, flocked):
                    raise FolderLocked(self.path, holder)
                self.took_over = holder or None
                info = {**self.info, "since": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
                data = json.dumps(info).encode()
                os.ftruncate(fd, 0)
                os.pwrite(fd, data, 0)
                os.fsync(fd)
                self._fd = fd
                return self
            except BaseException:
                if self._fd is None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
                raise
        raise FolderLocked(self.path, None)

    def release(self) -> None:
        """Give the lock up and remove the lock file (no-op when not held)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if os.fstat(fd).st_ino == os.stat(self.path).st_ino:
                self.path.unlink()
        except OSError:
            pass
        finally:
            os.close(fd)  # drops the flock

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _flock(fd: int) -> bool | None:
    """True: locked; False: someone else holds it; None: this file system cannot flock."""
    if fcntl is None:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        return None


def _read_holder(fd: int) -> dict[str, Any] | None:
    try:
        data = os.pread(fd, 65536, 0)
        holder = json.loads(data.decode("utf-8")) if data.strip() else None
    except (OSError, ValueError):
        return None
    return holder if isinstance(holder, dict) else None


def _stale(holder: dict[str, Any], flocked: bool | None) -> bool:
    """A lock file whose holder is gone: on this host, its flock was free (or its pid is dead)."""
    if holder.get("host") != socket.gethostname():
        return False  # cannot tell whether a process on another host lives: never take its lock over
    if flocked:
        return True
    return not pid_alive(holder.get("pid"))

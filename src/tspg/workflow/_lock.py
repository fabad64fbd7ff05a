"""The run folder's write lock: one tspg process writes a run folder at a time.

The lock is an advisory ``flock`` on ``OUT/.tspg.lock``, which the operating system releases when the holding
process ends, however it ends: a lock file left behind by a killed process holds no lock and is simply taken
over (the log says so). The file records the holder (pid, host, command, start time) for the refusal message.
On file systems without ``flock`` (some network file systems) the lock is skipped with a warning.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path

from tspg._names import LOCK
from tspg.data import InputError

log = logging.getLogger(__name__)


class RunLockedError(InputError):
    """The run folder is being written by another process (the folder is that process's, not ours to clean)."""


def _holder_text(raw: str) -> str:
    try:
        info = json.loads(raw)
        return f"pid {info['pid']} on {info['host']}, '{info['command']}', since {info['since']}"
    except (ValueError, KeyError, TypeError):
        return "another process"


@contextlib.contextmanager
def run_lock(folder: Path, command: str) -> Iterator[None]:
    """Hold ``folder``'s write lock while the block runs; another holder makes this one :class:`RunLockedError`.

    Parameters
    ----------
    folder
        The run folder (created if needed).
    command
        What this process is doing, for the other process's message (e.g. ``tspg train-generator``).
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no advisory locks
        log.warning("%s: file locking is not available on this system; do not run two tspg commands on one "
                    "run folder at once", folder)
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder_text(path.read_text(encoding="utf-8", errors="replace"))
            raise RunLockedError(f"{folder} is being written by another tspg process ({holder}); wait until it "
                                 "has finished, or use another folder.") from None
        except OSError as exc:  # flock unsupported here (e.g. some NFS mounts)
            log.warning("%s: cannot lock the run folder (%s); do not run two tspg commands on it at once",
                        folder, exc.strerror)
            yield
            return
        left = os.read(fd, 4096).decode("utf-8", errors="replace").strip()
        if left:
            log.info("%s: taking over the lock left by a process that ended (%s)", folder, _holder_text(left))
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": command,
                "since": dt.datetime.now().astimezone().isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(fd, 0)  # a clean end leaves an empty file: a non-empty one was left by a killed process
    finally:
        os.close(fd)

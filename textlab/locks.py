"""The lock of a run folder: `.lock`, an flock the kernel releases when its process dies (kill -9 included), keeps a
second process out of a folder while one writes to it; `.open`, held shared by each JupyterLab kernel that has the
run open, keeps `textlab run` and --fresh out while a kernel may still write."""

from __future__ import annotations

import fcntl
import os
import re
import shlex
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import RunError

LOCK = ".lock"
OPEN = ".open"  # held shared by each process that has the run open outside `textlab run` (a JupyterLab kernel)


_held: set[Path] = set()  # run folders this process holds: the lock is re-entrant within a process


def _ancestors() -> set[int]:
    """The process ids above this one (parent, grandparent, ...), read from /proc; empty where there is none."""
    found, pid = set(), os.getppid()
    while pid > 1 and pid not in found:
        found.add(pid)
        try:
            with open(f"/proc/{pid}/stat") as fh:  # "pid (name) state ppid ...": the name may hold spaces
                pid = int(fh.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            break
    return found


@contextmanager
def lock(run: Path):
    """Hold the run folder's lock; a second process gets a RunError naming the process that holds it. A process
    started by the holder (the notebook kernels of `textlab run`) works under its holder's lock."""
    run = Path(run).resolve()
    if run in _held:
        yield run
        return
    fd = _acquire(run)
    _held.add(run)
    try:
        yield run
    finally:
        _held.discard(run)
        if fd is not None:
            os.close(fd)  # releases the flock


_open: dict[Path, int] = {}  # run folders this process keeps open (keep_open): the fd of the shared OPEN lock
_alone_in: set[Path] = set()  # run folders this process holds alone (alone)
_beneath: set[Path] = set()  # run folders whose lock an ancestor holds (_acquire): its `textlab run` command


def keep_open(run: Path) -> None:
    """Mark the run folder open by this process until it exits, as a notebook kernel in JupyterLab may write to it
    between cells: `textlab run` and --fresh elsewhere refuse it meanwhile (alone). Processes started by a
    `textlab run` need not: their command holds the folder already. Any number of processes may keep it open."""
    run = Path(run).resolve()
    if run in _open or run in _alone_in or run in _beneath:
        return
    fd = os.open(run / OPEN, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise RunError(f"{run} is in use by {', '.join(_openers(run / OPEN)) or 'another process'}: wait until it "
                       f"finishes, or use another run name (--name NAME)") from None
    _open[run] = fd


def _openers(path: Path) -> list[str]:
    """'process PID (command line)' of every other process with `path` open, read from /proc."""
    found = []
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) == str(path) and int(fd.parts[2]) != os.getpid():
                command = Path("/proc", fd.parts[2], "cmdline").read_bytes().split(b"\0")
                line = " ".join(shlex.join(a.decode() for a in command if a).split())  # one line, even for -c code
                found.append(f"process {fd.parts[2]} ({line[:120]})")
        except (OSError, ValueError):
            continue
    return sorted(set(found))


@contextmanager
def alone(run: Path):
    """No other process keeps the run folder open (keep_open) while this block runs; else a RunError naming them.
    Hold lock(run) around it: keep_open is only ever called under that lock."""
    run = Path(run).resolve()
    if run in _alone_in:  # re-entrant: `textlab run --fresh` holds it, then opens the folder
        yield
        return
    own = _open.get(run)
    # no OPEN file: nobody ever kept the folder open, and under lock() nobody can start to
    fd = own if own is not None or not (run / OPEN).exists() else os.open(run / OPEN, os.O_RDWR)
    if fd is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # converts this process's own shared lock, if it holds one
        except BlockingIOError:
            if own is None:
                os.close(fd)
            else:
                fcntl.flock(fd, fcntl.LOCK_SH)  # a failed conversion may have dropped it (flock(2)): take it back
            others = ", ".join(_openers(run / OPEN)) or "another process"
            raise RunError(f"{run} is open in {others}, a notebook kernel that may still write to it: shut that "
                           f"kernel down (JupyterLab: Kernel > Shut Down Kernel), or use another run name "
                           f"(--name NAME)") from None
    _alone_in.add(run)
    try:
        yield
    finally:
        _alone_in.discard(run)
        if fd is not None and own is None:
            os.close(fd)
        elif fd is not None:
            fcntl.flock(fd, fcntl.LOCK_SH)


def _acquire(run: Path) -> int | None:
    try:
        run.mkdir(parents=True, exist_ok=True)
        fd = os.open(run / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
    except PermissionError as e:
        raise RunError(f"cannot write to the run folder {run} ({e.strerror}): make it writable, or choose another "
                       f"folder for runs with TEXTLAB_RUNS=/path/to/runs") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 4096, 0).decode("utf-8", "replace").strip() or "another process"
        os.close(fd)
        pid = re.match(r"process (\d+)", holder)
        if pid and int(pid.group(1)) in _ancestors():
            _beneath.add(run)
            return None  # our own `textlab run` holds it for the whole command: its notebooks work under it
        raise RunError(f"{run} is in use by {holder}: wait until it finishes, or use another run name "
                       f"(--name NAME)") from None
    os.ftruncate(fd, 0)
    who = f"process {os.getpid()} ({shlex.join(sys.argv)[:120]}, since {time.strftime('%Y-%m-%d %H:%M:%S')})"
    os.pwrite(fd, who.encode(), 0)
    return fd

"""Child processes in a process group of their own: start one, stop the whole group.

Every process Beacon or its tests start (the embedded broker, the services under
``make run``, Prism, Prometheus, workers in tests) goes through ``start``, so a
terminal's Ctrl-C reaches it only through ``stop``, and through ``stop``, so
nothing it spawned in turn is left behind holding a port.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

Process = subprocess.Popen[bytes]


def start(
    argv: Sequence[str | Path],
    env: Mapping[str, str] | None = None,
    log_file: Path | None = None,
    cwd: Path | None = None,
) -> Process:
    """Start ``argv`` as the leader of a new process group (stdout and stderr appended to
    ``log_file``, or discarded)."""
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
    # The child keeps its own copy of the log's descriptor: ours closes at once.
    with log_file.open("ab") if log_file is not None else contextlib.nullcontext(subprocess.DEVNULL) as out:
        return subprocess.Popen(
            [str(a) for a in argv], env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def stop(process: Process, timeout_s: float = 10.0, sig: int = signal.SIGTERM) -> int:
    """Send ``sig`` to the process's whole group, SIGKILL it after ``timeout_s``, and
    return once no process of the group is left; returns the leader's exit status."""
    return stop_all([process], timeout_s, sig)[0]


def stop_all(processes: Iterable[Process], timeout_s: float = 10.0, sig: int = signal.SIGTERM) -> list[int]:
    """``stop`` for several processes at once: they shut down in parallel, within one
    ``timeout_s`` in all."""
    group = list(processes)
    for process in group:
        _signal_group(process.pid, sig)  # even if the leader has exited: what it spawned may not have
    deadline = time.monotonic() + timeout_s
    codes = []
    for process in group:
        try:
            codes.append(process.wait(max(0.0, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            codes.append(process.wait())
    for process in group:
        _kill_stragglers(process.pid)
    return codes


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):  # nobody left (PermissionError: only zombies, on macOS)
        pass


def group_alive(pgid: int) -> bool:
    """True while a process of group ``pgid`` still runs. Zombies do not count: they hold
    no port, and an init that never reaps (as in some containers) keeps them forever."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: any member, zombie or not
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            state, _ppid, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError, IndexError):
            continue  # exited while we looked
        if int(group) == pgid and state not in ("Z", "X"):
            return True
    return False


def _kill_stragglers(pgid: int, timeout_s: float = 5.0) -> None:
    """After the leader has exited: SIGKILL whatever of its group outlived it, and wait
    until none of it runs (the kernel frees their ports as they go)."""
    deadline = time.monotonic() + timeout_s
    while group_alive(pgid) and time.monotonic() < deadline:
        _signal_group(pgid, signal.SIGKILL)
        time.sleep(0.02)

"""Processes Beacon starts leave nothing behind: SIGTERM to ``python -m beacon broker``
stops its broker and frees the port, and ``runtime.processes.stop`` ends a whole process
group, even a member that ignores SIGTERM and outlives its parent."""

from __future__ import annotations

import os
import signal
import socket
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from beacon.runtime import processes
from beacon.runtime.broker import free_port, kafka_answers
from harness.services import service_env

pytestmark = pytest.mark.slow


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie holds no port and runs nothing


def _descendants(pid: int) -> set[int]:
    children: dict[int, set[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, set()).add(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), set()) - found:
            found.add(child)
            todo.append(child)
    return found


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _wait(condition, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


@contextmanager
def _reaping(pids: set[int]) -> Iterator[set[int]]:
    """Whatever the test started: killed at the end even when an assertion failed first."""
    try:
        yield pids
    finally:
        for pid in pids:
            if _running(pid):
                os.kill(pid, signal.SIGKILL)


def test_sigterm_to_the_broker_command_stops_its_broker_and_frees_the_port(tmp_path):
    port = free_port()
    command = processes.start(
        [sys.executable, "-m", "beacon", "broker", "--port", str(port)], service_env(), tmp_path / "broker-cli.log"
    )
    with _reaping({command.pid}) as started:
        log = tmp_path / "broker-cli.log"
        _wait(lambda: "embedded broker ready" in log.read_text(), 60, "the command to say the broker is ready")
        assert kafka_answers(f"127.0.0.1:{port}")
        started |= _descendants(command.pid)
        assert len(started) > 1, "the command runs the broker as a child process"

        os.kill(command.pid, signal.SIGTERM)  # what systemd, Kubernetes or `kill` send: to the command only
        assert command.wait(30) == 0, log.read_text()

        _wait(lambda: _port_free(port), 10, f"port {port} to be free")
        assert [pid for pid in started if _running(pid)] == []


def test_stop_ends_the_whole_group_even_a_child_that_ignores_sigterm(tmp_path):
    port, pid_file = free_port(), tmp_path / "grandchild.pid"
    script = tmp_path / "parent.py"
    script.write_text(
        textwrap.dedent(f"""
        import os, signal, socket, subprocess, sys, time
        stubborn = '''
        import os, signal, socket, time
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        server = socket.create_server(("127.0.0.1", {port}))
        open({str(pid_file)!r}, "w").write(str(os.getpid()))
        time.sleep(600)
        '''
        subprocess.Popen([sys.executable, "-c", stubborn])
        time.sleep(600)  # SIGTERM ends this parent; the child ignores it
        """)
    )
    leader = processes.start([sys.executable, str(script)], log_file=tmp_path / "parent.log")
    with _reaping({leader.pid}) as started:
        _wait(lambda: pid_file.exists() and pid_file.read_text() != "", 30, "the stubborn child to listen")
        stubborn = int(pid_file.read_text())
        started.add(stubborn)
        assert not _port_free(port)

        assert processes.stop(leader, timeout_s=5) == -signal.SIGTERM

        assert not _running(stubborn) and not processes.group_alive(leader.pid)
        assert _port_free(port)


def test_sigterm_to_make_run_stops_every_service_and_the_broker(tmp_path):
    ports = {name: free_port() for name in ("ingest", "console", "notifier", "correlator", "validator")}
    env = service_env(
        data_dir=tmp_path / "var" / "data",
        outbox_dir=tmp_path / "var" / "outbox",
        **{f"{name}_port": port for name, port in ports.items()},
    )
    dev = processes.start([sys.executable, "-m", "beacon", "dev", "--no-demo"], env, tmp_path / "dev.log")
    with _reaping({dev.pid}) as started:
        _wait(lambda: "Ctrl-C stops everything" in (tmp_path / "dev.log").read_text(), 120, "make run to start")
        started |= _descendants(dev.pid)
        assert len(started) > len(ports) + 1, "the broker and every service run as child processes"

        os.kill(dev.pid, signal.SIGTERM)
        assert dev.wait(60) == 0, (tmp_path / "dev.log").read_text()[-3000:]

        assert [pid for pid in started if _running(pid)] == []
        assert [name for name, port in ports.items() if not _port_free(port)] == []

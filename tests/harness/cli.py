"""The Beacon CLI as a user runs it: ``python -m beacon <args>`` in its own process."""

from __future__ import annotations

import subprocess
import sys

from harness.services import REPO_ROOT


def beacon_cli(
    env: dict[str, str], *args: str, stdin: str = "", check: bool = True, timeout_s: float = 180
) -> subprocess.CompletedProcess[str]:
    """Run the CLI with ``env`` (and ``stdin`` piped in, e.g. a password line). With ``check``
    a non-zero exit fails the test, naming the command and its stderr; without, the caller
    asserts on the exit code and the output."""
    result = subprocess.run(
        [sys.executable, "-m", "beacon", *args],
        input=stdin,
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"beacon {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
    return result

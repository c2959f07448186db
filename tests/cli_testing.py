"""Running the real ``leasq`` command in tests: in this process (``leasq_broker.cli.main``
under click's stream isolation: fast) or as a subprocess (``python -m leasq_broker``: the
real exit code, environment and standard input)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from click.testing import CliRunner

from leasq_broker.cli import main

#: A CLI call that does not end in this long hangs (the command's own --timeout is shorter).
PROCESS_TIMEOUT = 60.0


@dataclass(frozen=True)
class Run:
    """What one ``leasq`` invocation did."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        assert self.code == 0, self.describe()
        return json.loads(self.stdout)

    def ok(self) -> Run:
        """This run, after checking that it succeeded."""
        assert self.code == 0, self.describe()
        return self

    def describe(self) -> str:
        return (f"leasq {' '.join(self.args)} -> exit {self.code}\n"
                f"stdout:\n{self.stdout}\nstderr:\n{self.stderr}")


#: The ``leasq`` fixture of tests/cli: ``leasq("task", "ls", ...) -> Run``.
Leasq = Callable[..., Run]


def clean_environment(home: Path, env: Mapping[str, str] | None) -> dict[str, str | None]:
    """No LEASQ_* variable of the test process, HOME in a temporary directory (so that no
    ~/.config/leasq/cli.toml of the machine is read), plus ``env``."""
    result: dict[str, str | None] = {k: None for k in os.environ if k.startswith("LEASQ_")}
    result["HOME"] = str(home)
    result.update(env or {})
    return result


def run_in_process(args: list[str], *, home: Path, env: Mapping[str, str] | None = None,
                   input: str | None = None) -> Run:
    """``leasq ARGS`` through :func:`leasq_broker.cli.main` in this process."""
    runner = CliRunner()
    with runner.isolation(input=input, env=clean_environment(home, env)) as (out, err, _):
        code = main(list(args))
        stdout, stderr = out.getvalue().decode(), err.getvalue().decode()
    return Run(tuple(args), code, stdout, stderr)


def run_process(args: list[str], *, home: Path, env: Mapping[str, str] | None = None,
                input: str | None = None) -> Run:
    """``python -m leasq_broker ARGS`` as a subprocess (stdin: ``input``, else /dev/null)."""
    environ = {k: v for k, v in clean_environment(home, env).items() if v is not None}
    environ = {**{k: v for k, v in os.environ.items() if not k.startswith("LEASQ_")}, **environ}
    done = subprocess.run(
        [sys.executable, "-m", "leasq_broker", *args], input=input,
        stdin=None if input is not None else subprocess.DEVNULL, capture_output=True,
        text=True, env=environ, timeout=PROCESS_TIMEOUT, check=False,
    )  # fmt: skip
    return Run(tuple(args), done.returncode, done.stdout, done.stderr)


def one_error_line(run: Run) -> str:
    """The single ``error: ...`` line a failed command prints; fails on a traceback or on
    more output."""
    assert run.code != 0, run.describe()
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), run.describe()
    assert "Traceback" not in run.stderr
    return lines[0]

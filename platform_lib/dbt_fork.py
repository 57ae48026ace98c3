"""Start the dbt CLI in a fork of this process, where dbt is already imported.

A process that runs a dbt step has imported dbt: dagster-dbt imports it to read the
manifest. A new `dbt` interpreter imports it again before it does anything, about
half of what a small `dbt build` costs. A fork starts with dbt's modules loaded and
otherwise runs the dbt command as the `dbt` executable would: the same arguments,
environment and working directory, its log lines on a pipe, its exit code. dbt's
global state and its DuckDB handles live and die with the fork.

The command can run inside an `around` function: given a function that runs the
command and returns its exit code, it does what the dbt process must do before and
after (the dbt step opens the domain's DuckDB file around it, so dbt's models in
memory are still there to check once dbt is done).

`start` returns what dagster-dbt reads of a `subprocess.Popen`: `args`, `stdout`,
`wait`, `returncode`, `send_signal`. The fork dies with the process that forked it.
Where forking a running program is not safe (every platform but Linux), a new Python
process (`python -m platform_lib.dbt_fork`) gets the command and `around` pickled.
"""

from __future__ import annotations

import ctypes
import gc
import io
import multiprocessing.util
import os
import pickle
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Callable, Mapping, Sequence

from platform_lib.dbt_project import dbt_executable

FORK = sys.platform == "linux"
PR_SET_PDEATHSIG = 1  # prctl(2): the signal this process gets when its parent dies

Around = Callable[[Callable[[], int]], int]


def just_run(run: Callable[[], int]) -> int:
    """The `around` of a plain dbt command."""
    return run()


def _die_with(parent: int) -> None:
    """Make the kernel kill this fork when the process that forked it dies, even by SIGKILL:
    a fork left running would hold the domain's DuckDB file and fail every later run."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:  # it died before the line above
        os._exit(1)


def _cli(args: Sequence[str]) -> int:
    """dbt's command line, as the `dbt` executable runs it: its exit code."""
    from dbt.cli.main import cli

    try:
        cli.main(args=list(args), prog_name="dbt")  # exits, as the `dbt` executable does
        return 0
    except SystemExit as exit:
        if exit.code is None or isinstance(exit.code, int):
            return exit.code or 0
        print(exit.code, file=sys.stderr)  # what the interpreter does with a message
        return 1


def _run(args: Sequence[str], around: Around) -> int:
    """The dbt process's work, in a fork or a new interpreter: the command inside `around`.

    At the end, what the interpreter does at exit and `os._exit` skips: dbt's semaphores
    are released (else Python's resource tracker warns of leaks) and its output flushed.
    """
    try:
        return around(lambda: _cli(args))
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        multiprocessing.util._run_finalizers()
        sys.stdout.flush()
        sys.stderr.flush()


def _run_forked(args: Sequence[str], env: Mapping[str, str], cwd: str, output: int, signal_mask: set, around: Around) -> int:
    """The fork's whole life: become a `dbt` process, run the command, return its exit code."""
    # The garbage collector leaves the parent's objects alone: scanning them would cost
    # time and write to, so copy, every page they share with the parent (the sample
    # mesh's dbt step: 4.6 s instead of 5.3 s, the mean of six runs each).
    gc.freeze()
    multiprocessing.util._finalizer_registry.clear()  # the parent's cleanups are not the fork's to run
    signal.signal(signal.SIGINT, signal.default_int_handler)  # dbt cancels its queries on Ctrl-C
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, signal_mask)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    os.dup2(output, 1)
    os.dup2(output, 2)
    os.close(output)
    sys.stdin = open(0, closefd=False)
    sys.stdout = sys.stderr = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    return _run(args, around)


class DbtFork:
    """A dbt command running in a fork, seen as dagster-dbt sees a `subprocess.Popen`."""

    def __init__(self, args: Sequence[str], env: Mapping[str, str], cwd: str, around: Around = just_run):
        self.args = [dbt_executable(), *args]
        self.returncode: int | None = None
        reader, writer = os.pipe()
        sys.stdout.flush()
        sys.stderr.flush()
        # A signal sent before the fork has dbt's handlers would be lost: it waits until then.
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        parent = os.getpid()
        self.pid = os.fork()
        if self.pid == 0:  # the fork: never returns into the caller's code
            code = 1
            try:
                _die_with(parent)
                os.close(reader)
                code = _run_forked(args, env, cwd, writer, blocked, around)
            finally:
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        os.close(writer)
        self.stdout = open(reader, "rb")

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is None:
                self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
            elif time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(self.args, timeout)
            else:
                time.sleep(0.05)
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)


def start(args: Sequence[str], env: Mapping[str, str], cwd: str | Path, around: Around = just_run) -> DbtFork | subprocess.Popen:
    """Run `dbt <args>` inside `around` with this environment in this folder; its output, stderr included, on `.stdout`."""
    return DbtFork(args, env, str(cwd), around) if FORK else spawn(args, env, cwd, around)


def spawn(args: Sequence[str], env: Mapping[str, str], cwd: str | Path, around: Around = just_run) -> subprocess.Popen:
    """`start` in a new Python process, which gets the command and `around` pickled."""
    process = subprocess.Popen(
        [sys.executable, "-m", __name__], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=dict(env), cwd=cwd
    )
    process.stdin.write(pickle.dumps((list(args), around)))
    process.stdin.close()
    return process


if __name__ == "__main__":  # a dbt process started by `start` where it cannot fork
    command, wrapper = pickle.load(sys.stdin.buffer)
    os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
    sys.exit(_run(command, wrapper))

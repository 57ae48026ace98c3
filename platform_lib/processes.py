"""Whose process is it, and is it gone: a run, or a step building a product, records its
process (`this_process`) so that a later one can tell what a killed process left behind
(a `building.json`, a run's pool slots, a copy of a source) from what a live one holds."""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def process_alive(pid: int) -> bool:
    """Whether process `pid` of this host still runs (another user's counts): what a killed
    run left behind is removed only once its process is gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def this_process() -> dict[str, Any]:
    """This process as another may later ask whether it is gone (`process_gone`): its host,
    pid namespace, pid, and start time (a pid is reused, after a reboot or by a container
    restarted under the same host name)."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid_namespace": _pid_namespace(), "pid": pid, "started": _started(pid)}


def process_gone(process: Mapping[str, Any]) -> bool:
    """Whether the process `this_process` described has ended; False where this one cannot
    tell: on another host, or in another pid namespace of this one (a container sharing the
    host's name), it may still run."""
    if process["host"] != socket.gethostname() or process.get("pid_namespace") not in (None, _pid_namespace()):
        return False
    if not process_alive(process["pid"]):
        return True
    started = process.get("started")  # alive, but maybe another process that took its pid since
    return bool(started) and _started(process["pid"]) not in (None, started)


def _started(pid: int) -> str | None:
    """When process `pid` started, as this host's kernel tells: its boot's id and the clock
    ticks since that boot (proc(5)); None where /proc does not say (not Linux, or just gone)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return f"{boot}:{stat.rsplit(')', 1)[1].split()[19]}"  # field 22, starttime; the name before it may hold spaces


def _pid_namespace() -> str | None:
    """This process's pid namespace (proc(5)): pids of another one mean other processes."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return None

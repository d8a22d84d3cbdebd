"""Services as plain processes, each in its own process group, found again by PID file and start time.

A PID alone is not enough to signal a process safely: the recorded start time makes sure a recycled PID is
never signalled, and the log of every group started lets ``railpm down`` reach what a crashed service left.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

def group_members(pgid: int) -> list[psutil.Process]:
    """Live processes of a process group (zombies left to their reaper do not count)."""
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(process)
        except (ProcessLookupError, psutil.Error):
            continue
    return members


def stop_group(pgid: int, first: signal.Signals = signal.SIGTERM, grace_s: float = 30) -> bool:
    """Signal a service's process group (the service and what it forked: executors, task runners), SIGKILL
    whatever outlives ``grace_s``; True if the group was running."""
    if not group_members(pgid):
        return False
    for sig, grace in ((first, grace_s), (signal.SIGKILL, 10)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            break
        deadline = time.monotonic() + grace
        while group_members(pgid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if not group_members(pgid):
            break
    return True


def log_tail(path: Path, lines: int = 40) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""


@dataclass
class Service:
    name: str
    command: list[str]
    env: dict[str, str]
    ready: Callable[[], bool]
    """True once the service answers (a port, a health endpoint)."""
    user: str | None = None
    """Run as this system user (PostgreSQL refuses to run as root)."""


@dataclass
class PidFile:
    path: Path

    def write(self, pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps({"pid": pid, "started": psutil.Process(pid).create_time()}))

    def running_pid(self) -> int | None:
        """The recorded PID if that very process still runs (same start time), else None."""
        try:
            record = json.loads(self.path.read_text())
            process = psutil.Process(record["pid"])
            if abs(process.create_time() - record["started"]) < 0.01 and process.status() != psutil.STATUS_ZOMBIE:
                return process.pid
        except (OSError, ValueError, KeyError, psutil.Error):
            pass
        return None


@dataclass
class GroupLog:
    """Every process group the topology ever started, so ``down`` also reaches the children of a service that
    crashed: a SIGKILLed scheduler leaves its LocalExecutor workers running in its old group, under no PID file."""

    path: Path

    def add(self, pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as log:
            log.write(json.dumps({"pgid": pid, "started": psutil.Process(pid).create_time()}) + "\n")

    def live_groups(self) -> list[int]:
        """Recorded groups that still have members. A group id is never reused while any member lives; a live
        leader with another start time means the id was reused after the group ended, so it is not ours."""
        groups = []
        lines = self.path.read_text().splitlines() if self.path.exists() else []
        for record in map(json.loads, lines):
            try:
                if abs(psutil.Process(record["pgid"]).create_time() - record["started"]) >= 0.01:
                    continue
            except psutil.NoSuchProcess:
                pass
            if group_members(record["pgid"]):
                groups.append(record["pgid"])
        return groups

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def processes_with_environment(variable: bytes) -> list[int]:
    """PIDs (other than this one) whose environment holds ``variable`` (``b"NAME=value"``): how the task
    processes of one Airflow home are found after their scheduler is gone."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.pid != os.getpid() and variable in Path(f"/proc/{process.pid}/environ").read_bytes().split(b"\0"):
                found.append(process.pid)
        except (OSError, psutil.Error):
            continue
    return found

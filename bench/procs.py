"""Lambda worker processes of our MiniStack, found through /proc: peak resident memory (VmHWM) and CPU time."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Worker:
    pid: int
    function_name: str
    hwm_kb: int
    rss_kb: int


def parse_status(text: str) -> dict[str, int]:
    """The kB fields of /proc/<pid>/status that matter here (VmHWM, VmRSS) plus PPid."""
    wanted = {"VmHWM", "VmRSS", "PPid"}
    out: dict[str, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key in wanted:
            out[key] = int(value.split()[0])
    return out


def parse_environ(raw: bytes) -> dict[str, str]:
    """/proc/<pid>/environ: NUL-separated KEY=VALUE entries."""
    env: dict[str, str] = {}
    for entry in raw.split(b"\0"):
        key, sep, value = entry.partition(b"=")
        if sep:
            env[key.decode(errors="replace")] = value.decode(errors="replace")
    return env


def _children(parent: int, proc: Path) -> Iterator[int]:
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = parse_status((entry / "status").read_text())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        if status.get("PPid") == parent:
            yield int(entry.name)


def lambda_workers(ministack_pid: int, proc: Path = PROC) -> list[Worker]:
    """Every direct child of `ministack_pid` that runs a Lambda (AWS_LAMBDA_FUNCTION_NAME in its environment).

    Only our MiniStack's children: another tree's MiniStack runs functions with the same names.
    """
    workers: list[Worker] = []
    for pid in _children(ministack_pid, proc):
        try:
            env = parse_environ((proc / str(pid) / "environ").read_bytes())
            status = parse_status((proc / str(pid) / "status").read_text())
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        if name:
            workers.append(Worker(pid, name, status.get("VmHWM", 0), status.get("VmRSS", 0)))
    return workers


def peak_mb(workers: Iterable[Worker], name_contains: str) -> float:
    """Max VmHWM in MB over the workers whose function name contains `name_contains` (case-insensitive)."""
    needle = name_contains.lower()
    peaks = [w.hwm_kb for w in workers if needle in w.function_name.lower()]
    return round(max(peaks) / 1024, 1) if peaks else 0.0


def reset_peaks(pids: Iterable[int], proc: Path = PROC) -> int:
    """Reset VmHWM to the current RSS (`echo 5 > /proc/<pid>/clear_refs`); returns how many were reset."""
    done = 0
    for pid in pids:
        try:
            (proc / str(pid) / "clear_refs").write_text("5")
            done += 1
        except OSError:
            continue
    return done


def cpu_seconds(pid: int, proc: Path = PROC, reaped_children: bool = False) -> float:
    """User + system CPU time of a process so far (0 when it is gone); with `reaped_children`, plus
    that of the children it has waited for (a child that lives and dies within an invocation)."""
    try:
        fields = (proc / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, PermissionError, IndexError):
        return 0.0
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks / CLOCK_TICKS


def children(parent: int, proc: Path = PROC) -> list[int]:
    return list(_children(parent, proc))


def process_hwm_mb(pid: int, proc: Path = PROC) -> float:
    try:
        return round(parse_status((proc / str(pid) / "status").read_text()).get("VmHWM", 0) / 1024, 1)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0.0


def machine_busy_seconds(proc: Path = PROC) -> float:
    """CPU seconds all cores spent not idle (not idle, not iowait) since boot, from /proc/stat."""
    fields = [int(x) for x in (proc / "stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields) - fields[3] - (fields[4] if len(fields) > 4 else 0)) / CLOCK_TICKS


_FUNCTION_GROUPS = (("apihandler", "api"), ("fanout", "fanout"), ("settle", "settle"))


class CpuMeter:
    """CPU seconds spent by groups of processes between start() and stop(): our MiniStack, its Lambda
    workers by function, the Postgres backends (children of the postmaster), this process, and
    everything else on the machine (other engineers' tests: a contention indicator)."""

    def __init__(self, ministack_pid: int, postmaster_pid: int | None, proc: Path = PROC) -> None:
        self._ms = ministack_pid
        self._pm = postmaster_pid
        self._proc = proc
        self._start: dict[int, float] = {}
        self._machine = 0.0
        self._self = 0.0

    def _groups(self) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {"ministack": [self._ms]}
        for w in lambda_workers(self._ms, self._proc):
            name = w.function_name.lower()
            key = next((g for k, g in _FUNCTION_GROUPS if k in name), "other_lambdas")
            groups.setdefault(key, []).append(w.pid)
        if self._pm:
            groups["postgres"] = [self._pm, *children(self._pm, self._proc)]
        return groups

    def _cpu(self, group: str, pid: int) -> float:
        # A Lambda worker's reaped children are its own work (anything it forks); MiniStack's are the
        # workers it has retired, already counted under their functions.
        return cpu_seconds(pid, self._proc, reaped_children=group not in ("ministack", "postgres"))

    def start(self) -> None:
        self._start = {pid: self._cpu(group, pid) for group, pids in self._groups().items() for pid in pids}
        self._self = _own_cpu()
        self._machine = machine_busy_seconds(self._proc)

    def stop(self) -> dict[str, float]:
        """Seconds per group; a process that appeared meanwhile counts from 0."""
        machine = machine_busy_seconds(self._proc) - self._machine
        result = {
            group: sum(self._cpu(group, pid) - self._start.get(pid, 0.0) for pid in pids)
            for group, pids in self._groups().items()
        }
        result["bench_client"] = _own_cpu() - self._self
        result["other_processes"] = max(0.0, machine - sum(result.values()))
        return {group: round(seconds, 3) for group, seconds in result.items()}


def _own_cpu() -> float:
    t = os.times()
    return t.user + t.system

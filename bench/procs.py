"""Lambda worker processes of our MiniStack, found through /proc, and their peak resident memory (VmHWM)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


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


def process_hwm_mb(pid: int, proc: Path = PROC) -> float:
    try:
        return round(parse_status((proc / str(pid) / "status").read_text()).get("VmHWM", 0) / 1024, 1)
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return 0.0

"""The benchmark harness's file side: result files, and finding Lambda workers in a /proc tree (no stack needed)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import procs, results
from tests.unit.test_bench_helpers import sample_result


def test_write_puts_the_same_document_in_latest_and_a_dated_file(tmp_path: Path) -> None:
    latest, dated = results.write(sample_result(), datetime(2026, 1, 5, 14, 2, 33, tzinfo=UTC), tmp_path)
    assert latest == tmp_path / "latest.json" and dated == tmp_path / "20260105T140233Z.json"
    assert json.loads(latest.read_text()) == json.loads(dated.read_text()) == sample_result()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["20260105T140233Z.json", "latest.json"]


def test_write_refuses_an_incomplete_result_and_writes_nothing(tmp_path: Path) -> None:
    broken = sample_result()
    del broken["memory"]
    with pytest.raises(ValueError, match="memory"):
        results.write(broken, datetime.now(UTC), tmp_path)
    assert list(tmp_path.iterdir()) == []


def fake_process(proc: Path, pid: int, ppid: int, hwm_kb: int, function: str | None) -> None:
    d = proc / str(pid)
    d.mkdir()
    (d / "status").write_text(f"Name:\tpython3.11\nPPid:\t{ppid}\nVmHWM:\t{hwm_kb} kB\nVmRSS:\t{hwm_kb // 2} kB\n")
    env = b"PATH=/bin\0" + (f"AWS_LAMBDA_FUNCTION_NAME={function}\0".encode() if function else b"")
    (d / "environ").write_bytes(env)


def test_only_lambda_children_of_our_ministack_count(tmp_path: Path) -> None:
    fake_process(tmp_path, 100, 1, 200_000, None)  # our MiniStack
    fake_process(tmp_path, 101, 100, 80_000, "pix-payouts-APIHandler-B2B")
    fake_process(tmp_path, 102, 100, 60_000, "pix-payouts-Settle-813")
    fake_process(tmp_path, 103, 100, 65_000, "pix-payouts-Settle-813")
    fake_process(tmp_path, 104, 100, 1_000, None)  # a child that is not a Lambda
    fake_process(tmp_path, 200, 1, 200_000, None)  # another tree's MiniStack ...
    fake_process(tmp_path, 201, 200, 500_000, "pix-payouts-Settle-813")  # ... with a same-named function
    (tmp_path / "self").mkdir()  # non-numeric entries are skipped

    workers = procs.lambda_workers(100, tmp_path)
    assert sorted(w.pid for w in workers) == [101, 102, 103]
    assert procs.peak_mb(workers, "settle") == round(65_000 / 1024, 1)
    assert procs.peak_mb(workers, "apihandler") == round(80_000 / 1024, 1)


def fake_stat(proc: Path, pid: int, utime: int, stime: int, cutime: int = 0) -> None:
    # /proc/<pid>/stat: fields 14-16 (utime, stime, cutime) in clock ticks; the name may contain spaces
    fields = ["S", "1"] + ["0"] * 9 + [str(utime), str(stime), str(cutime)] + ["0"] * 9
    (proc / str(pid) / "stat").write_text(f"{pid} (python 3.11) " + " ".join(fields) + "\n")


def test_cpu_meter_groups_processes_by_function_and_counts_newcomers_from_zero(tmp_path: Path) -> None:
    tick = procs.CLOCK_TICKS
    (tmp_path / "stat").write_text("cpu  0 0 0 1000 0 0 0 0 0 0\n")
    fake_process(tmp_path, 100, 1, 0, None)  # MiniStack
    fake_process(tmp_path, 101, 100, 0, "pix-payouts-APIHandler-B2B")
    fake_process(tmp_path, 102, 100, 0, "pix-payouts-Settle-813")
    fake_process(tmp_path, 104, 100, 0, "pix-payouts-Fanout-C3D")
    fake_process(tmp_path, 300, 1, 0, None)  # postmaster
    for pid in (100, 101, 102, 104, 300):
        fake_stat(tmp_path, pid, tick, 0)
    meter = procs.CpuMeter(100, 300, tmp_path)
    meter.start()
    fake_stat(tmp_path, 102, 2 * tick, 0)  # settle worker: +1 s
    fake_stat(tmp_path, 104, 3 * tick, 0)  # fan-out worker: +2 s
    fake_stat(tmp_path, 101, tick, 0, cutime=tick)  # API worker: +1 s in a child it forked and reaped
    fake_stat(tmp_path, 100, 3 * tick, tick, cutime=9 * tick)  # the workers MiniStack retired are not its work
    fake_process(tmp_path, 103, 100, 0, "pix-payouts-Settle-813")  # a worker spawned meanwhile
    fake_stat(tmp_path, 103, tick // 2, 0)
    fake_process(tmp_path, 301, 300, 0, None)  # a new Postgres backend
    fake_stat(tmp_path, 301, tick, tick)
    (tmp_path / "stat").write_text(f"cpu  {20 * tick} 0 0 1000 0 0 0 0 0 0\n")  # 20 busy seconds in all
    used = meter.stop()
    assert used["ministack"] == 3.0
    assert used["settle"] == 1.5
    assert used["api"] == 1.0
    assert used["fanout"] == 2.0
    assert used["postgres"] == 2.0
    others = 20 - (3 + 1.5 + 1 + 2 + 2 + used["bench_client"])
    assert used["other_processes"] == pytest.approx(others, abs=0.01)

"""settle_latency: payouts through the Efí adapter and the local PSP answering every call after a provider
latency, from the 201 until every payout is terminal (confirmations included), against a floor measured in
the same run: the no-op SQS-triggered function sleeping one provider latency per invocation, fed while it
drains (every send of a batch perfectly overlapped).

Run by `make bench` after the other figures, or alone: `python -m bench.settle_latency [--items N]`, which
adds the figure to bench/results/latest.json. The emulator and the PSP restart for the measurement with
PIX_STACK_PROVIDER=efi named (not left to the stack's default) and the PSP's latency (about 5 s), and again
afterwards on the provider the stack ran before (alone: stopped again if it was not running).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import floors, measure, procs, stackctl
from bench.env import ROOT, Stack, client, connect
from bench.payloads import batch_body, new_run_id
from bench.stats import ratio

TARGET = 1.5
PROVIDER = "efi"  # the figure is the Efí adapter's, through the local PSP


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


@contextmanager
def efi_stack(latency_ms: int, back_to: str | None) -> Iterator[None]:
    """The stack's functions on the Efí adapter, the PSP answering after latency_ms and confirming
    latency_ms after it accepts; the poller left out (webhooks are not lost here). Afterwards the emulator
    and the PSP restart on `back_to` with the PSP's own settings, or are left as they are (None)."""
    stackctl.restart_in(
        PROVIDER, PSP_LATENCY_MS=str(latency_ms), PSP_CONFIRM_DELAY_MS=str(latency_ms), POLL_AFTER_SECONDS="3600"
    )
    try:
        yield
    finally:
        if back_to is not None:
            stackctl.restart_in(back_to)


def floor_seconds(sqs: Any, like_url: str, run_id: str, items: int, latency_s: float, timeout: float) -> float:
    """n messages sent to a scratch queue while a no-op mapping (the settle mapping's BatchSize and
    MaximumConcurrency) drains it, each invocation sleeping one provider latency; until the last one ends."""
    mapping = stackctl.settle_mapping_settings()
    with floors.scratch_queue(sqs, f"pix-bench-lat-{run_id}", like_url) as q:
        with floors.noop_consumer(
            f"pix-bench-lat-{run_id}", q.arn, mapping["batch_size"], mapping["max_concurrency"], sleep_seconds=latency_s
        ) as noop:
            floors.set_mapping(noop.uuid, True)  # warm the workers as the settle ones were
            floors.send_seconds(sqs, q.url, 200)
            floors.wait_empty(sqs, q.url, timeout)
            started = time.time()
            floors.send_seconds(sqs, q.url, items)
            seen_empty = floors.wait_empty(sqs, q.url, timeout)
            last = floors.last_invocation_end(noop.function_name, seen_empty)
            floors.set_mapping(noop.uuid, False)
    end = last if last is not None and started < last <= seen_empty else seen_empty
    return end - started


def _postmaster() -> int | None:
    try:
        return int((ROOT / ".stack" / "pgdata" / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None


def run(items: int, latency_ms: int, timeout: float, back_to: str | None) -> dict[str, Any]:
    """The figure; afterwards the stack restarts on `back_to` (None: left as it is, for restore to stop)."""
    run_id = new_run_id()
    with efi_stack(latency_ms, back_to):
        stack = Stack.from_files()
        db = connect(stack.database_url)
        log(f"settle_latency: warm-up of 200 payouts through Efí at {latency_ms} ms a call")
        warm = measure.post_batch(stack, batch_body(run_id, "latwarm", 200))
        measure.wait_terminal(db, warm.batch_id, warm.items, timeout)
        psp_pid = int((ROOT / ".stack" / "psp.pid").read_text().strip())
        meter = procs.CpuMeter(int((ROOT / ".stack" / "ministack.pid").read_text().strip()), _postmaster())
        meter.start()
        psp_cpu = procs.cpu_seconds(psp_pid)
        ing = measure.post_batch(stack, batch_body(run_id, "lat", items))
        last = measure.wait_terminal(db, ing.batch_id, items, timeout)
        seconds = last - ing.answered_at
        cpu = meter.stop()
        # The PSP is not a Lambda worker: out of "other_processes" into its own line.
        cpu["local_psp"] = round(procs.cpu_seconds(psp_pid) - psp_cpu, 3)
        cpu["other_processes"] = round(max(0.0, cpu.get("other_processes", 0.0) - cpu["local_psp"]), 3)
        with db.cursor() as cur:
            cur.execute(
                "SELECT count(*) FILTER (WHERE status = 'Completed'), count(*) FILTER (WHERE status = 'Failed')"
                " FROM payouts WHERE batch_id = %s",
                (ing.batch_id,),
            )
            completed, failed = cur.fetchone()
        log(f"settle_latency: {items} payouts terminal {seconds:.1f} s after the 201 ({completed} completed)")
        floor = floor_seconds(client("sqs"), stack.queue_url, run_id, items, latency_ms / 1000, timeout)
        log(f"settle_latency: floor {floor:.1f} s")
        db.close()
    return {
        "provider": PROVIDER,
        "provider_latency_ms": latency_ms,
        "payouts": items,
        "seconds": round(seconds, 3),
        "floor_seconds": round(floor, 3),
        "ratio": round(ratio(seconds, floor), 2),
        "target": TARGET,
        "cpu_seconds": cpu,
        "completed": int(completed),
        "failed": int(failed),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--latency-ms", type=int, default=100)
    parser.add_argument("--timeout", type=float, default=900)
    args = parser.parse_args(argv)
    before = stackctl.found()  # efi_stack's restart starts whatever is not running
    try:
        figure = run(args.items, args.latency_ms, args.timeout, back_to=stackctl.back_to(before))
    finally:
        stackctl.restore(before)
    latest = ROOT / "bench" / "results" / "latest.json"
    document = json.loads(latest.read_text()) if latest.exists() else {}
    document["settle_latency"] = figure
    latest.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(figure, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

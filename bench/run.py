"""`make bench` entry point: ingest, settle, read, memory and scaling figures against their floors."""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import floors, measure, procs, results, stackctl
from bench.env import ROOT, STACK_DIR, Stack, client, connect, endpoint
from bench.payloads import batch_body, new_run_id
from bench.stats import per_thousand, percentile, ratio

WARMUP_ITEMS = 200  # enough messages for the mapping to start all MaximumConcurrency workers


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--items", type=int, default=10_000, help="items in the measured batch (API maximum 10,000)")
    p.add_argument("--scaling", default="1000,5000", help="extra batch sizes for the scaling curve")
    p.add_argument("--page-size", type=int, default=500, help="limit= for the read walk")
    p.add_argument("--read-passes", type=int, default=2, help="times to walk all pages")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for a batch to settle")
    p.add_argument(
        "--concurrent",
        action="store_true",
        help="leave the settle mapping running during POSTs (default: paused until the 201, so ingest and "
        "settle are measured apart, like their floors)",
    )
    p.add_argument("--no-stack", action="store_true", help="do not start/stop the stack; it must be up")
    return p.parse_args(argv)


def git_commit() -> str:
    res = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    return res.stdout.strip() or "unknown"


def ministack_pid() -> int:
    return int((STACK_DIR / "ministack.pid").read_text().strip())


def ingest_and_settle(
    stack: Stack, db: Any, body: dict[str, Any], concurrent: bool, timeout: float
) -> tuple[measure.Ingest, float, int]:
    """POST the batch (settle mapping paused unless `concurrent`), resume at the 201, wait until all terminal.
    Returns (ingest, settle seconds from the 201, payouts already terminal at the 201)."""
    paused = nullcontext(lambda: None) if concurrent else stackctl.settle_paused()
    with paused as resume:
        ingest = measure.post_batch(stack, body)
        resume()
    at_201, _ = measure.terminal(db, ingest.batch_id)
    last = measure.wait_terminal(db, ingest.batch_id, ingest.items, timeout)
    return ingest, max(0.0, last - ingest.answered_at), at_201


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = datetime.now(UTC)
    run_id = new_run_id()
    stack = Stack.from_files()
    db = connect(stack.database_url)
    sqs = client("sqs")
    mapping = stackctl.settle_mapping_settings()
    load_start = os.getloadavg()
    log(f"run {run_id} on {endpoint()} ({os.cpu_count()} cpus, load {load_start[0]:.2f})")

    depth = floors.queue_depth(sqs, stack.queue_url)
    if depth:
        log(f"payouts queue holds {depth} messages from earlier work; waiting for it to drain")
        floors.wait_empty(sqs, stack.queue_url, args.timeout)

    ms_pid = ministack_pid()
    procs.reset_peaks([ms_pid] + [w.pid for w in procs.lambda_workers(ms_pid)])

    log(f"warm-up: {WARMUP_ITEMS} items (starts the API and settle workers)")
    warm = measure.post_batch(stack, batch_body(run_id, "warm", WARMUP_ITEMS))
    measure.wait_terminal(db, warm.batch_id, warm.items, args.timeout)

    scaling: list[dict[str, Any]] = []
    for size in [int(s) for s in args.scaling.split(",") if s.strip()]:
        ing, settle_s, _ = ingest_and_settle(
            stack, db, batch_body(run_id, f"s{size}", size), args.concurrent, args.timeout
        )
        log(f"scaling: {size} items ingested in {ing.seconds:.2f} s, settled {settle_s:.1f} s later")
        scaling.append({"items": size, "seconds": round(ing.seconds, 3), "settle_seconds": round(settle_s, 2)})

    log(f"ingest + settle: {args.items} items")
    ing, settle_s, at_201 = ingest_and_settle(
        stack, db, batch_body(run_id, "main", args.items), args.concurrent, args.timeout
    )
    log(f"ingest {ing.seconds:.2f} s; settle {settle_s:.2f} s after the 201 ({at_201} already terminal at the 201)")
    scaling.append({"items": args.items, "seconds": round(ing.seconds, 3), "settle_seconds": round(settle_s, 2)})
    scaling.sort(key=lambda p: p["items"])
    for point in scaling:
        point["seconds_per_1000"] = round(per_thousand(point["seconds"], point["items"]), 3)

    log(f"read: {args.read_passes} walk(s) of every page, limit={args.page_size}")
    latencies, seen = measure.read_pages(stack, ing.batch_id, args.page_size, args.read_passes)
    if seen != args.items:
        raise RuntimeError(f"page walk saw {seen} payouts, expected {args.items}")

    log("floors: scratch queue, no-op consumer, COPY, sends, drain")
    with floors.scratch_queue(sqs, f"pix-bench-{run_id}", stack.queue_url) as q:
        with floors.noop_consumer(
            f"pix-bench-noop-{run_id}", q.arn, mapping["batch_size"], mapping["max_concurrency"]
        ) as noop:
            floors.set_mapping(noop.uuid, True)  # warm the no-op workers like the settle ones were
            floors.send_seconds(sqs, q.url, WARMUP_ITEMS)
            floors.wait_empty(sqs, q.url, args.timeout)
            floors.set_mapping(noop.uuid, False)

            copy_s = floors.copy_seconds(stack.database_url, run_id, args.items)
            send_s = floors.send_seconds(sqs, q.url, args.items)
            if floors.queue_depth(sqs, q.url) != args.items:
                raise RuntimeError("scratch queue does not hold the messages just sent")
            t0 = time.perf_counter()
            floors.set_mapping(noop.uuid, True)
            drain_s = floors.wait_empty(sqs, q.url, args.timeout) - t0
    log(f"floors: copy {copy_s:.3f} s, send {send_s:.2f} s, no-op drain {drain_s:.2f} s")

    workers = procs.lambda_workers(ms_pid)
    ingest_floor = copy_s + send_s
    load_end = os.getloadavg()
    return {
        "ingest": {
            "items": ing.items,
            "seconds": round(ing.seconds, 3),
            "floor_seconds": round(ingest_floor, 3),
            "ratio": round(ratio(ing.seconds, ingest_floor), 2),
            "floor": {
                "copy_seconds": round(copy_s, 3),
                "send_seconds": round(send_s, 3),
                "send_calls": -(-args.items // 10),
            },
        },
        "settle": {
            "payouts": ing.items,
            "seconds": round(settle_s, 3),
            "floor_seconds": round(drain_s, 3),
            "ratio": round(ratio(settle_s, drain_s), 2),
            "terminal_at_201": at_201,
            "per_payout_ms": round(settle_s * 1000 / ing.items, 2),
            "floor": {"messages": args.items, **mapping},
        },
        "read": {
            "page_size": args.page_size,
            "p50_ms": round(percentile(latencies, 50), 1),
            "p95_ms": round(percentile(latencies, 95), 1),
            "max_ms": round(max(latencies), 1),
            "pages": len(latencies),
            "passes": args.read_passes,
        },
        "memory": {
            "api_peak_rss_mb": procs.peak_mb(workers, "apihandler"),
            "settle_peak_rss_mb": procs.peak_mb(workers, "settle"),
            "ministack_peak_rss_mb": procs.process_hwm_mb(ms_pid),
            "workers": [
                {"function": w.function_name, "pid": w.pid, "peak_rss_mb": round(w.hwm_kb / 1024, 1)} for w in workers
            ],
        },
        "scaling": scaling,
        "meta": {
            "run_id": run_id,
            "started_at": started.isoformat(timespec="seconds"),
            "git_commit": git_commit(),
            "mode": "concurrent" if args.concurrent else "isolated",
            "endpoint": endpoint(),
            "cpus": os.cpu_count(),
            "loadavg_start": [round(x, 2) for x in load_start],
            "loadavg_end": [round(x, 2) for x in load_end],
            "seconds_total": round((datetime.now(UTC) - started).total_seconds(), 1),
        },
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the finally blocks (mapping, scratch resources)
    before = None if args.no_stack else stackctl.ensure_up()
    try:
        result = run(args)
    finally:
        if before is not None:
            stackctl.restore(before)
    latest, dated = results.write(result, datetime.fromisoformat(result["meta"]["started_at"]))
    print()
    print(results.table(result))
    print(f"\nwritten: {latest.relative_to(ROOT)}  {dated.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

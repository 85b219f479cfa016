"""`make bench` entry point: ingest, enqueued, settle, end-to-end, read, memory and scaling figures against
their floors."""

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

from bench import floors, measure, procs, results, settle_latency, stackctl
from bench.env import ROOT, STACK_DIR, Stack, client, connect, endpoint
from bench.payloads import batch_body, new_run_id
from bench.stats import per_thousand, percentile, ratio
from bench.webhooks import measure_webhooks

WARMUP_ITEMS = 200  # enough messages for a mapping to start all MaximumConcurrency workers


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--items", type=int, default=10_000, help="items in the measured batch (API maximum 10,000)")
    p.add_argument("--scaling", default="1000,5000", help="extra batch sizes for the scaling curve ('' for none)")
    p.add_argument("--page-size", type=int, default=500, help="limit= for the read walk")
    p.add_argument("--read-passes", type=int, default=2, help="times to walk all pages")
    p.add_argument("--timeout", type=float, default=600, help="seconds to wait for a batch to settle")
    p.add_argument(
        "--concurrent",
        action="store_true",
        help="leave the settle mapping running during POSTs (default: paused until the ingest is measured, "
        "so ingest and settle are timed apart, like their floors)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="repetitions of ingest + settle, each next to its own floors; the median ratio is reported "
        "(single rounds of either move by a fifth or more on a shared machine)",
    )
    p.add_argument("--no-stack", action="store_true", help="do not start/stop the stack; it must be up")
    p.add_argument(
        "--latency-ms",
        type=int,
        default=100,
        help="settle_latency: the local PSP answers every call after this long (0: skip the figure)",
    )
    p.add_argument("--no-webhooks", action="store_true", help="leave out the webhooks figure")
    return p.parse_args(argv)


def git_commit() -> str:
    res = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False)
    return res.stdout.strip() or "unknown"


def ministack_pid() -> int:
    return int((STACK_DIR / "ministack.pid").read_text().strip())


def postmaster_pid() -> int | None:
    try:
        return int((STACK_DIR / "pgdata" / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None  # an external DATABASE_URL: its backends are not ours to watch


def per_item_ms(cpu: dict[str, float], items: int) -> dict[str, float]:
    return {group: round(seconds * 1000 / items, 3) for group, seconds in cpu.items() if seconds > 0}


def scaling_point(stack: Stack, db: Any, run_id: str, size: int, args: argparse.Namespace) -> dict[str, Any]:
    """One fresh batch of `size` items: its ingest time (settle mapping paused unless --concurrent), then
    settled before the next measurement so no work is left running."""
    body = batch_body(run_id, f"s{size}", size)
    if args.concurrent:
        ing = measure.post_batch(stack, body)
        resumed = ing.answered_at
    else:
        with stackctl.settle_paused() as resume:
            ing = measure.post_batch(stack, body)
            resumed = time.time()
            resume()
    settle_s = measure.wait_terminal(db, ing.batch_id, ing.items, args.timeout) - resumed
    log(f"scaling: {size} items ingested in {ing.seconds:.2f} s, settled {settle_s:.1f} s later")
    return {"items": size, "seconds": round(ing.seconds, 3), "settle_seconds": round(settle_s, 2)}


def ingest_floor(sqs: Any, queue_url: str, database_url: str, run_id: str, items: int, meter: procs.CpuMeter) -> dict:
    """COPY + sequential sends of `items` messages; the messages stay in the scratch queue."""
    copy_s = floors.copy_seconds(database_url, f"{run_id}-{int(time.time() * 1000) % 100_000}", items)
    meter.start()
    send_s = floors.send_seconds(sqs, queue_url, items)
    cpu = meter.stop()
    if floors.queue_depth(sqs, queue_url) != items:
        raise RuntimeError("scratch queue does not hold the messages just sent")
    return {"copy_seconds": round(copy_s, 3), "send_seconds": round(send_s, 3), "send_cpu_seconds": cpu}


def measure_round(
    stack: Stack,
    db: Any,
    sqs: Any,
    q: floors.ScratchQueue,
    noop: floors.NoopMapping,
    args: argparse.Namespace,
    run_id: str,
    label: str,
    meter: procs.CpuMeter,
) -> dict[str, Any]:
    """One round: ingest floor, POST of args.items (until 201, then until every message is enqueued),
    ingest floor again, settle, the no-op drain of the second floor's messages; then the end-to-end view:
    a second batch POSTed with settlement running until all are terminal, and its floor (COPY and sends
    while the no-op drains). Floors and service are measured back to back, so drift hits both alike."""
    n = args.items
    floor_runs = [ingest_floor(sqs, q.url, stack.database_url, run_id, n, meter)]
    sqs.purge_queue(QueueUrl=q.url)
    paused = nullcontext(lambda: None) if args.concurrent else stackctl.settle_paused()
    with paused as resume:
        meter.start()
        ing = measure.post_batch(stack, batch_body(run_id, label, n))
        enqueued = measure.wait_enqueued(db, ing.batch_id, n, args.timeout)
        ingest_cpu = meter.stop()
        if not args.concurrent:  # adjacent to the POST while settle is still paused
            floor_runs.append(ingest_floor(sqs, q.url, stack.database_url, run_id, n, meter))
        at_resume, _ = measure.terminal(db, ing.batch_id)
        resumed = ing.answered_at if args.concurrent else time.time()
        meter.start()
        resume()
    last = measure.wait_terminal(db, ing.batch_id, n, args.timeout)
    settle_cpu = meter.stop()
    settle_s = max(0.0, last - resumed)
    if args.concurrent:  # a floor next to settling work would measure contention; refill after it
        floor_runs.append(ingest_floor(sqs, q.url, stack.database_url, run_id, n, meter))
    meter.start()
    drain_s = floors.drain_seconds(sqs, q.url, noop.uuid, noop.function_name, args.timeout)
    drain_cpu = meter.stop()
    floors.set_mapping(noop.uuid, False)

    e2e = measure.post_batch(stack, batch_body(run_id, f"{label}e2e", n))
    e2e_s = measure.wait_terminal(db, e2e.batch_id, n, args.timeout) - e2e.sent_at
    e2e_floor = floors.end_to_end_seconds(sqs, q.url, noop, stack.database_url, f"{run_id}-e2e", n, args.timeout)

    copy_s = sum(f["copy_seconds"] for f in floor_runs) / len(floor_runs)
    send_s = sum(f["send_seconds"] for f in floor_runs) / len(floor_runs)
    enqueued_s = enqueued - ing.sent_at
    log(
        f"round {label}: ingest {ing.seconds:.2f} s, enqueued {enqueued_s:.2f} s (floor {copy_s + send_s:.2f} s), "
        f"settle {settle_s:.2f} s (floor {drain_s:.2f} s; {at_resume} terminal when timing started), "
        f"end to end {e2e_s:.2f} s (floor {e2e_floor['seconds']:.2f} s)"
    )
    return {
        "ingest": ing,
        "enqueued_at": enqueued,
        "ingest_seconds": ing.seconds,
        "ingest_floor_seconds": copy_s + send_s,
        "ingest_ratio": ratio(ing.seconds, copy_s + send_s),
        "ingest_to_enqueued_seconds": enqueued_s,
        "ingest_to_enqueued_floor_seconds": copy_s + send_s,
        "ingest_to_enqueued_ratio": ratio(enqueued_s, copy_s + send_s),
        "ingest_floor": {"copy_seconds": copy_s, "send_seconds": send_s, "runs": floor_runs},
        "ingest_cpu": ingest_cpu,
        "settle_seconds": settle_s,
        "settle_floor_seconds": drain_s,
        "settle_ratio": ratio(settle_s, drain_s),
        "settle_cpu": settle_cpu,
        "at_resume": at_resume,
        "drain_cpu": drain_cpu,
        "end_to_end_seconds": e2e_s,
        "end_to_end_floor_seconds": e2e_floor["seconds"],
        "end_to_end_ratio": ratio(e2e_s, e2e_floor["seconds"]),
        "end_to_end_floor": e2e_floor,
    }


def median_round(rounds: list[dict[str, Any]], key: Any) -> dict[str, Any]:
    """The round whose key(round) is the median (the lower middle one for an even count)."""
    ordered = sorted(rounds, key=key)
    return ordered[(len(ordered) - 1) // 2]


def round_rows(rounds: list[dict[str, Any]], figure: str) -> list[dict[str, float]]:
    """Each round's seconds, floor and ratio for `figure` ("ingest", "settle", ...), as kept in the JSON."""
    return [
        {
            "seconds": round(r[f"{figure}_seconds"], 3),
            "floor_seconds": round(r[f"{figure}_floor_seconds"], 3),
            "ratio": round(r[f"{figure}_ratio"], 2),
        }
        for r in rounds
    ]


def figure(median: dict[str, Any], rounds: list[dict[str, Any]], name: str, items: int) -> dict[str, Any]:
    """A figure's section of the result: its median round's seconds, floor and ratio, and every round."""
    return {
        "items": items,
        "seconds": round(median[f"{name}_seconds"], 3),
        "floor_seconds": round(median[f"{name}_floor_seconds"], 3),
        "ratio": round(median[f"{name}_ratio"], 2),
        "rounds": round_rows(rounds, name),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    started = datetime.now(UTC)
    run_id = new_run_id()
    provider = stackctl.recorded_provider()
    stack = Stack.from_files()
    db = connect(stack.database_url)
    sqs = client("sqs")
    mapping = stackctl.settle_mapping_settings()
    ms_pid = ministack_pid()
    meter = procs.CpuMeter(ms_pid, postmaster_pid())
    load_start = os.getloadavg()
    log(
        f"run {run_id} on {endpoint()} ({os.cpu_count()} cpus, load {load_start[0]:.2f}, mode "
        f"{'concurrent' if args.concurrent else 'isolated'}, {args.rounds} rounds)"
    )

    depth = floors.queue_depth(sqs, stack.queue_url)
    if depth:
        log(f"payouts queue holds {depth} messages from earlier work; waiting for it to drain")
        floors.wait_empty(sqs, stack.queue_url, args.timeout)
    procs.reset_peaks([ms_pid] + [w.pid for w in procs.lambda_workers(ms_pid)])

    log(f"warm-up: {WARMUP_ITEMS} items (starts the API and settle workers)")
    warm = measure.post_batch(stack, batch_body(run_id, "warm", WARMUP_ITEMS))
    measure.wait_terminal(db, warm.batch_id, warm.items, args.timeout)

    scaling = [scaling_point(stack, db, run_id, int(s), args) for s in args.scaling.split(",") if s.strip()]

    n = args.items
    with floors.scratch_queue(sqs, f"pix-bench-{run_id}", stack.queue_url) as q:
        with floors.noop_consumer(
            f"pix-bench-noop-{run_id}", q.arn, mapping["batch_size"], mapping["max_concurrency"]
        ) as noop:
            floors.set_mapping(noop.uuid, True)  # warm the no-op workers as the settle ones were
            floors.send_seconds(sqs, q.url, WARMUP_ITEMS)
            floors.wait_empty(sqs, q.url, args.timeout)
            floors.set_mapping(noop.uuid, False)
            log(
                f"{args.rounds} rounds of: ingest floor, ingest of {n} items until enqueued, ingest floor, settle,"
                " no-op drain, end to end and its floor"
            )
            rounds = [
                measure_round(stack, db, sqs, q, noop, args, run_id, f"main{r}", meter) for r in range(args.rounds)
            ]
            workers = procs.lambda_workers(ms_pid)  # before the no-op function goes away

    ing_round = median_round(rounds, lambda r: r["ingest_ratio"])
    enq_round = median_round(rounds, lambda r: r["ingest_to_enqueued_ratio"])
    settle_round = median_round(rounds, lambda r: r["settle_ratio"])
    e2e_round = median_round(rounds, lambda r: r["end_to_end_ratio"])
    ing = ing_round["ingest"]
    accepted = measure.accepted_at(
        client("logs"), f"/aws/lambda/{stackctl.physical_id('APIHandler')}", ing.batch_id, ing.sent_at
    )
    phases = measure.ingest_phases(db, ing, accepted, ing_round["enqueued_at"])

    read_batch = rounds[-1]["ingest"].batch_id
    log(f"read: {args.read_passes} walk(s) of every page, limit={args.page_size}")
    latencies, seen = measure.read_pages(stack, read_batch, args.page_size, args.read_passes)
    if seen != n:
        raise RuntimeError(f"page walk saw {seen} payouts, expected {n}")

    webhooks = None
    if not args.no_webhooks:
        log(f"webhooks: a local receiver told every event of {n} items, settlement running")
        webhooks = measure_webhooks(stack, db, run_id, n, args.timeout)
        log(f"webhooks: last event {webhooks['seconds']:.2f} s after the last payout, ratio {webhooks['ratio']:.3f}")

    copy_s, send_s = ing_round["ingest_floor"]["copy_seconds"], ing_round["ingest_floor"]["send_seconds"]
    settle_s = settle_round["settle_seconds"]
    log(
        f"median rounds: ingest ratio {ing_round['ingest_ratio']:.2f}, enqueued ratio "
        f"{enq_round['ingest_to_enqueued_ratio']:.2f}, settle ratio {settle_round['settle_ratio']:.2f}, "
        f"end to end ratio {e2e_round['end_to_end_ratio']:.2f}"
    )

    median_seconds = median_round(rounds, lambda r: r["ingest_seconds"])["ingest_seconds"]
    scaling.append({"items": n, "seconds": round(median_seconds, 3), "settle_seconds": round(settle_s, 2)})
    scaling.sort(key=lambda p: p["items"])
    for point in scaling:
        point["seconds_per_1000"] = round(per_thousand(point["seconds"], point["items"]), 3)

    load_end = os.getloadavg()
    return {
        "ingest": {
            "items": ing.items,
            "seconds": round(ing.seconds, 3),
            "floor_seconds": round(ing_round["ingest_floor_seconds"], 3),
            "ratio": round(ing_round["ingest_ratio"], 2),
            "rounds": round_rows(rounds, "ingest"),
            "phases_seconds": phases,
            "cpu_seconds": ing_round["ingest_cpu"],
            "floor": {
                "copy_seconds": round(copy_s, 3),
                "send_seconds": round(send_s, 3),
                "send_calls": -(-n // floors.SQS_BATCH),
                "runs": ing_round["ingest_floor"]["runs"],
            },
        },
        "ingest_to_enqueued": {
            **figure(enq_round, rounds, "ingest_to_enqueued", n),
            "fanout_tasks": -(-n // stackctl.fanout_range_items()),
        },
        "end_to_end": {
            **figure(e2e_round, rounds, "end_to_end", n),
            "floor": {k: round(v, 3) for k, v in e2e_round["end_to_end_floor"].items()},
        },
        "settle": {
            "payouts": n,
            "seconds": round(settle_s, 3),
            "floor_seconds": round(settle_round["settle_floor_seconds"], 3),
            "ratio": round(settle_round["settle_ratio"], 2),
            "rounds": round_rows(rounds, "settle"),
            "terminal_when_timing_started": settle_round["at_resume"],
            "per_payout_ms": round(settle_s * 1000 / n, 2),
            "cpu_ms_per_payout": per_item_ms(settle_round["settle_cpu"], n),
            "floor": {"messages": n, **mapping, "cpu_ms_per_message": per_item_ms(settle_round["drain_cpu"], n)},
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
            "fanout_peak_rss_mb": procs.peak_mb(workers, "fanout"),
            "ministack_peak_rss_mb": procs.process_hwm_mb(ms_pid),
            "workers": [
                {"function": w.function_name, "pid": w.pid, "peak_rss_mb": round(w.hwm_kb / 1024, 1)} for w in workers
            ],
        },
        "scaling": scaling,
        **({"webhooks": webhooks} if webhooks is not None else {}),
        "meta": {
            "run_id": run_id,
            "started_at": started.isoformat(timespec="seconds"),
            "git_commit": git_commit(),
            "mode": "concurrent" if args.concurrent else "isolated",
            "provider": provider,  # of every figure but settle_latency's (efi)
            "rounds": args.rounds,
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
    # Every figure but settle_latency on the in-database sandbox, named here rather than left to the stack's
    # default (efi); settle_latency restarts the stack on efi and back (bench/settle_latency.py).
    before = None if args.no_stack else stackctl.ensure_up(stackctl.PROVIDER)
    if before is None and stackctl.recorded_provider() != stackctl.PROVIDER:
        raise SystemExit(
            f"--no-stack: the stack's functions use {stackctl.recorded_provider()}, the figures are measured on "
            f"{stackctl.PROVIDER}: `make down && PIX_STACK_PROVIDER={stackctl.PROVIDER} make up` first"
        )
    try:
        result = run(args)
        if args.latency_ms:
            result["settle_latency"] = settle_latency.run(
                args.items, args.latency_ms, args.timeout, back_to=stackctl.back_to(before)
            )
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

"""`python -m bench.granularity`: what carrying several payouts per SQS message would save on the embedded stack.

Sends N payouts as N one-payout messages and as N/k k-payout messages (sequential SendMessageBatch,
like the ingest floor), and drains each with the no-op function through a mapping like the settle
one. The stack must be up (`make up`); prints one line per granularity.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import floors, stackctl
from bench.env import Stack, client
from bench.payloads import new_run_id


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--payouts", type=int, default=10_000)
    p.add_argument("--per-message", default="1,10", help="payouts per message to compare")
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args(argv)
    run_id, sqs, stack = new_run_id(), client("sqs"), Stack.from_files()
    mapping = stackctl.settle_mapping_settings()
    with (
        floors.scratch_queue(sqs, f"pix-gran-{run_id}", stack.queue_url) as q,
        floors.noop_consumer(f"pix-gran-noop-{run_id}", q.arn, mapping["batch_size"], mapping["max_concurrency"]) as n,
    ):
        floors.set_mapping(n.uuid, True)  # warm the no-op workers
        floors.send_seconds(sqs, q.url, 200)
        floors.wait_empty(sqs, q.url, 120)
        floors.set_mapping(n.uuid, False)
        for _ in range(args.repeat):
            for per in (int(x) for x in args.per_message.split(",")):
                send = floors.send_seconds(sqs, q.url, args.payouts, per_message=per)
                drain = floors.drain_seconds(sqs, q.url, n.uuid, n.function_name, 600)
                floors.set_mapping(n.uuid, False)
                messages = -(-args.payouts // per)
                print(
                    f"{per:>3} payout(s) per message: {messages:>6} messages, {-(-messages // 10):>5} calls,"
                    f" send {send:6.2f} s, no-op drain {drain:6.2f} s",
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Operator commands: `pix-payouts` or `python -m chalicelib.cli` {migrate,sweep,poll,dlq-redrive,reconcile}."""

from __future__ import annotations

import argparse
import json
import sys

import psycopg2
from botocore.exceptions import BotoCoreError
from botocore.exceptions import ClientError as BotoClientError

from . import reconcile_cli, stack_target, wiring
from .adapters.migrations import apply_migrations
from .domain.errors import DependencyRefused, Unavailable
from .services import confirmations, recovery, watch


def main(argv: list[str] | None = None, prog: str = "python -m chalicelib.cli") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="apply pending database migrations (safe to repeat)")
    sweep = sub.add_parser("sweep", help="re-wake fan-outs that never finished, re-send stale payouts")
    sweep.add_argument(
        "--grace-seconds", type=int, help="outbox records wait this long after a wake-up (default from settings)"
    )
    sweep.add_argument("--stale-seconds", type=int, help="re-send open payouts untouched this long")
    sweep.add_argument(
        "--lost-seconds", type=int, help="when the queues hold fewer messages than open payouts, this long"
    )
    redrive = sub.add_parser(
        "dlq-redrive", help="reopen RETRIES_EXHAUSTED payouts and move dead letters back to the payouts queue"
    )
    redrive.add_argument("--batch-id", help="only reopen this batch's payouts (dead letters are all moved)")
    poll = sub.add_parser("poll", help="ask the provider about payouts awaiting its confirmation (PIX_PROVIDER=efi)")
    poll.add_argument("--older-than-seconds", type=int, help="awaiting this long (default POLL_AFTER_SECONDS)")
    reconcile_cli.add_parser(sub)
    args = parser.parse_args(argv)
    if args.command == "reconcile" and (error := reconcile_cli.window_error(args)) is not None:
        sys.stderr.write(error + "\n")  # a usage error whatever the target: checked first
        return reconcile_cli.USAGE
    try:
        if stack_target.apply(args.command):
            wiring.reset()  # settings read before the target was known are read again
    except stack_target.NoTarget as exc:
        sys.stderr.write(f"{exc}\n")
        return 2
    if args.command == "reconcile":
        return reconcile_cli.run(args)

    try:
        result = _run(args)
    except DependencyRefused as exc:  # up, but it will not take the call: a setting is wrong
        sys.stderr.write(f"{args.command}: {exc}; check the stack's settings and permissions\n")
        return 3
    # botocore's own errors: the payouts queue (adapters/sqs_queue.py) does not translate them yet.
    except (Unavailable, psycopg2.Error, BotoCoreError, BotoClientError) as exc:
        sys.stderr.write(f"{args.command}: could not reach its database or queues ({exc}); is the stack up?\n")
        return 3
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


def _run(args: argparse.Namespace) -> object:
    s = wiring.settings()
    if args.command == "migrate":
        result: object = {"applied": apply_migrations(wiring.database_url())}
    elif args.command == "sweep":
        swept = recovery.sweep(
            wiring.repository(),
            wiring.queue(),
            wiring.outbox(),
            wiring.fanout_queue(),
            grace_seconds=s.sweep_grace_seconds if args.grace_seconds is None else args.grace_seconds,
            stale_seconds=s.sweep_stale_seconds if args.stale_seconds is None else args.stale_seconds,
            limit=s.sweep_limit,
            dead_letters=wiring.dead_letters(),
            lost_seconds=s.sweep_lost_seconds if args.lost_seconds is None else args.lost_seconds,
        )
        swept["open_too_long"] = watch.open_too_long(wiring.open_payouts(), s.open_payout_alarm_seconds)
        result = swept
    elif args.command == "poll":
        result = confirmations.poll(
            wiring.transitions(),
            wiring.provider(),
            older_than_seconds=s.poll_after_seconds if args.older_than_seconds is None else args.older_than_seconds,
            limit=s.poll_limit,
            concurrency=s.provider_concurrency,
            provider_name=s.pix_provider,
        )
    else:
        result = recovery.redrive(wiring.repository(), wiring.queue(), wiring.dead_letters(), args.batch_id)
    return result


if __name__ == "__main__":
    sys.exit(main())

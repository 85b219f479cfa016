"""`infra/stack.py`'s command line: up, down, serve, status, env here; deploy handed to its own module."""

from __future__ import annotations

import argparse
import sys

from infra.stacklib.embedded import cmd_down, cmd_env, cmd_serve, cmd_status, cmd_up

# `infra/stack.py --help`'s description
DESCRIPTION = """\
Local emulator stack for pix-payouts: embedded Postgres + MiniStack + the
Chalice app deployed as a CloudFormation (SAM) stack.

Run with the app venv:  .venv/bin/python infra/stack.py {up|down|serve|status|env}

Everything is relative to the project root (the parent of this file's folder):
  .venv/bin/chalice        packages the app (chalice package --merge-template)
  .venv-emu/bin/ministack  the AWS emulator (its own venv: it pins botocore)
  .stack/                  runtime state: pgdata, logs, pid files, URLs

Only stdlib + boto3 + pgserver are used.  Everything started here listens on
127.0.0.1 (MiniStack) or on a unix socket in .stack/pgdata (pgserver) only.
"""

COMMANDS = (
    ("up", cmd_up, "start Postgres + MiniStack, package and deploy (idempotent)"),
    ("down", cmd_down, "stop what `up` started"),
    ("serve", cmd_serve, "up, block until Ctrl-C/SIGTERM, then down"),
    ("status", cmd_status, "show what is running (exit 0 only when everything is healthy)"),
    ("env", cmd_env, "print export lines for tests and scripts"),
)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = top.add_subparsers(dest="cmd", required=True)
    for name, fn, help_ in COMMANDS:
        p = sub.add_parser(name, help=help_)
        p.set_defaults(func=fn)
        if name == "down":
            p.add_argument(
                "--all",
                action="store_true",
                help="also stop the pgserver on .stack/pgdata when something else started it",
            )
    # `deploy` has its own module and options (infra/stacklib/deploy.py); listed here for --help.
    sub.add_parser("deploy", help="deploy the same template to LocalStack (--endpoint) or AWS (deploy --help)")
    return top


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    if words[:1] == ["deploy"]:
        from infra.stacklib import deploy

        return deploy.main(words[1:])
    args = parser().parse_args(words)
    code: int = args.func(args)
    return code

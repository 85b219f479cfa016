"""Where the embedded stack is: .stack/ files, the MiniStack endpoint, boto3 clients and a DB connection."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STACK_DIR = ROOT / ".stack"
REGION = "us-east-1"


def port() -> int:
    return int(os.environ.get("PIX_STACK_PORT", "4566"))


def endpoint() -> str:
    return f"http://127.0.0.1:{port()}"


def _read(name: str) -> str:
    return (STACK_DIR / name).read_text().strip()


@dataclass(frozen=True)
class Stack:
    api_url: str
    database_url: str
    queue_url: str
    endpoint: str
    api_key: str = ""

    @classmethod
    def from_files(cls) -> Stack:
        return cls(_read("api_url"), _read("database_url"), _read("queue_url"), endpoint(), _read("api_key"))

    @property
    def headers(self) -> dict[str, str]:
        return {"x-api-key": self.api_key}

    def url(self, path: str) -> str:
        return self.api_url.rstrip("/") + path


def client(service: str) -> Any:
    """A boto3 client on MiniStack (any credentials), like infra/stack.py builds them."""
    import boto3
    from botocore.config import Config

    config = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=120)
    return boto3.client(
        service,
        endpoint_url=endpoint(),
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 (emulators take any credentials)
        config=config,
    )


def connect(database_url: str) -> Any:
    import psycopg2

    conn = psycopg2.connect(database_url, application_name="pix-bench")
    conn.autocommit = True
    return conn

"""Database credentials and the webhook secret from AWS Secrets Manager, so no secret sits in an environment."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from .aws_errors import aws_errors


def read_secret(client: Any, secret_id: str) -> dict[str, Any]:
    """The secret's JSON. Raises Unavailable (Secrets Manager down) or DependencyRefused (no such
    secret, no access): the SDK's errors never leave this module."""
    with aws_errors("the secret store"):
        raw = client.get_secret_value(SecretId=secret_id)["SecretString"]
    secret = json.loads(raw)
    if not isinstance(secret, dict):
        raise ValueError("the secret is not a JSON object")
    return secret


def database_url_from_secret(client: Any, secret_id: str) -> str:
    """Read the secret once: either {"url": "..."} or RDS's {"username", "password", "host", "port", "dbname"}."""
    secret = read_secret(client, secret_id)
    if secret.get("url"):
        return str(secret["url"])
    missing = [k for k in ("username", "password", "host") if not secret.get(k)]
    if missing:
        raise ValueError(f"database secret lacks {', '.join(missing)}")
    user, password = quote(str(secret["username"]), safe=""), quote(str(secret["password"]), safe="")
    port = int(secret.get("port") or 5432)
    dbname = quote(str(secret.get("dbname") or "postgres"), safe="")
    return f"postgresql://{user}:{password}@{secret['host']}:{port}/{dbname}?sslmode={secret.get('sslmode', 'require')}"


def webhook_secret_from_secret(client: Any, secret_id: str) -> str:
    """The Efí account's secret ({"client_id", ..., "webhook_secret"}): the secret of the registered webhook URL."""
    return str(read_secret(client, secret_id).get("webhook_secret") or "")

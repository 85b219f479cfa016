"""Turning a Secrets Manager secret into a database URL."""

from __future__ import annotations

import json

import pytest

from chalicelib.adapters.secrets import database_url_from_secret, webhook_secret_from_secret


class Secrets:
    """A stand-in for the boto3 client's one call we use (a third-party API, not our code)."""

    def __init__(self, value: dict) -> None:
        self.value = value

    def get_secret_value(self, SecretId: str) -> dict:
        return {"SecretString": json.dumps(self.value)}


def test_an_rds_secret_becomes_a_url_with_escaped_credentials_and_tls():
    url = database_url_from_secret(
        Secrets({"username": "app", "password": "p@ss/w:rd", "host": "db.example", "port": 5433, "dbname": "pix"}), "x"
    )
    assert url == "postgresql://app:p%40ss%2Fw%3Ard@db.example:5433/pix?sslmode=require"


def test_a_url_secret_is_used_as_is():
    assert database_url_from_secret(Secrets({"url": "postgresql://a@b/c"}), "x") == "postgresql://a@b/c"


def test_a_secret_without_credentials_is_refused():
    with pytest.raises(ValueError, match="password"):
        database_url_from_secret(Secrets({"username": "u", "host": "h"}), "x")


def test_the_webhook_secret_comes_from_the_efi_secret_and_is_empty_without_one():
    assert webhook_secret_from_secret(Secrets({"client_id": "c", "webhook_secret": "w"}), "x") == "w"
    assert webhook_secret_from_secret(Secrets({"client_id": "c"}), "x") == ""

"""Who may call Efí's webhook route: the caller that knows the registered URL's secret, and nobody without one."""

from __future__ import annotations

import pytest

from chalicelib.api.efi_webhook import authenticated


@pytest.mark.parametrize(
    ("query", "secret", "expected"),
    [
        ({"hmac": "s3cret", "ignorar": ""}, "s3cret", True),
        ({"hmac": "s3cret"}, "s3cret", True),
        ({"hmac": "s3cre"}, "s3cret", False),
        ({"hmac": "s3cret!"}, "s3cret", False),
        ({"hmac": "S3CRET"}, "s3cret", False),
        ({}, "s3cret", False),
        (None, "s3cret", False),
        ({"hmac": ""}, "", False),  # no secret configured: every call is refused, an empty one too
        ({}, "", False),
        ({"HMAC": "s3cret"}, "s3cret", False),
        ({"hmac": "é"}, "é", True),
    ],
)
def test_only_the_registered_urls_secret_authenticates(query, secret, expected) -> None:
    assert authenticated(query, secret) is expected

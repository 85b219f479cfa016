"""Webhook rules without sockets: which URLs may be called, endpoint bodies, secrets, the retry schedule."""

from __future__ import annotations

import base64
import itertools
import random
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook

from chalicelib.adapters.webhook_sender import signature_header
from chalicelib.domain.webhooks import (
    InvalidEndpoint,
    UnsafeUrl,
    check_url,
    event_uuid,
    new_secret,
    parse_endpoint_request,
    parse_schedule,
    public_event_id,
    retry_delay,
)
from chalicelib.settings import Settings

PUBLIC = "93.184.215.14"


def resolver(*addresses: str):
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        ("https://169.254.169.254/latest/meta-data/", ["169.254.169.254"]),
        ("https://metadata.example/", ["169.254.169.254"]),
        ("https://[fd00:ec2::254]/", ["fd00:ec2::254"]),
        ("https://mapped.example/", ["::ffff:169.254.169.254"]),
        ("https://link-local.example/", ["169.254.10.1"]),
        ("https://ten.example/", ["10.0.0.7"]),
        ("https://home.example/", ["192.168.1.1"]),
        ("https://docker.example/", ["172.17.0.1"]),
        ("https://v6-private.example/", ["fc00::1"]),
        ("https://zero.example/", ["0.0.0.0"]),
        ("https://cgnat.example/", ["100.64.0.1"]),
        ("https://alibaba.example/", ["100.100.100.200"]),
        ("https://one-bad-of-two.example/", [PUBLIC, "10.1.2.3"]),
        ("https://localhost/", ["127.0.0.1"]),
        ("http://public.example/", [PUBLIC]),
        ("ftp://public.example/", [PUBLIC]),
        ("https://user:pw@public.example/", [PUBLIC]),
        ("https:///no-host", [PUBLIC]),
        ("https://unresolvable.example/", []),
    ],
)
def test_urls_that_are_not_public_https_are_refused(url: str, addresses: list[str]) -> None:
    with pytest.raises(UnsafeUrl):
        check_url(url, resolver(*addresses), allow_http_loopback=False)


@pytest.mark.parametrize(
    ("url", "addresses"),
    [
        ("https://169.254.169.254/", ["169.254.169.254"]),
        ("http://10.0.0.1/", ["10.0.0.1"]),
        ("http://public.example/", [PUBLIC]),
        ("http://rebinding.example/", ["127.0.0.1", PUBLIC]),
    ],
)
def test_the_loopback_setting_opens_loopback_only(url: str, addresses: list[str]) -> None:
    with pytest.raises(UnsafeUrl):
        check_url(url, resolver(*addresses), allow_http_loopback=True)


def test_public_https_and_with_the_setting_local_http_are_accepted() -> None:
    target = check_url("https://hooks.example.com:8443/pix?x=1", resolver(PUBLIC), allow_http_loopback=False)
    assert (target.scheme, target.host, target.port, target.address) == ("https", "hooks.example.com", 8443, PUBLIC)
    local = check_url("http://127.0.0.1:9000/hook", resolver("127.0.0.1"), allow_http_loopback=True)
    assert (local.address, local.port) == ("127.0.0.1", 9000)


def test_the_loopback_setting_is_off_unless_the_environment_turns_it_on() -> None:
    assert Settings.from_env({}).webhooks_allow_http_loopback is False
    assert Settings.from_env({"WEBHOOKS_ALLOW_HTTP_LOOPBACK": "true"}).webhooks_allow_http_loopback is True


def test_an_endpoint_body_lists_every_problem() -> None:
    with pytest.raises(InvalidEndpoint) as err:
        parse_endpoint_request({"events": ["payout.paid", "batch.accepted"], "description": None, "x": 1})
    codes = {(p.field, p.code) for p in err.value.problems}
    assert codes == {("x", "unknown_field"), ("url", "required"), ("events", "format"), ("description", "type")}


@pytest.mark.parametrize("text", ["pay\x00roll", "payroll \ud800"])
def test_text_postgresql_cannot_store_is_a_problem_not_a_500(text: str) -> None:
    # found by the OpenAPI fuzzer: a NUL in a PATCH's description reached PostgreSQL, which refused it
    with pytest.raises(InvalidEndpoint) as err:
        parse_endpoint_request({"description": text}, partial=True)
    assert {(p.field, p.code) for p in err.value.problems} == {("description", "format")}
    with pytest.raises(InvalidEndpoint) as err:
        parse_endpoint_request({"url": "https://example.com/" + text, "events": ["batch.accepted"]})
    assert {(p.field, p.code) for p in err.value.problems} == {("url", "format")}
    assert parse_endpoint_request({"description": "payroll ção 💸\n"}, partial=True).description == "payroll ção 💸\n"


def test_a_patch_needs_one_known_field_and_takes_enabled() -> None:
    assert parse_endpoint_request({"enabled": False}, partial=True).enabled is False
    for body in ({}, {"enabled": "no"}, {"events": []}, {"events": ["batch.accepted", "batch.accepted"]}):
        with pytest.raises(InvalidEndpoint):
            parse_endpoint_request(body, partial=True)


def test_a_secret_is_32_random_bytes_in_the_whsec_format() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert secret != new_secret()


def test_event_ids_round_trip_and_anything_else_names_no_event() -> None:
    stored = "0b9e6c1e-2f6d-4b43-a1c8-f1e0d2c3b4a5"
    assert event_uuid(public_event_id(stored)) == stored
    assert event_uuid("evt_0B9E") is None and event_uuid(stored) is None


def test_the_default_schedule_spans_more_than_a_day_and_retries_first_within_30_seconds() -> None:
    schedule = parse_schedule(Settings.from_env({}).webhook_retry_schedule)
    jitter = Settings.from_env({}).webhook_retry_jitter
    assert schedule[0] * (1 + jitter) <= 30
    assert sum(d * (1 - jitter) for d in schedule) > 24 * 3600
    assert all(b >= a for a, b in itertools.pairwise(schedule))


def test_retries_are_spread_by_the_jitter_and_follow_the_schedule() -> None:
    rng = random.Random(7)
    delays = [retry_delay((10.0, 100.0), 2, 0.2, rng) for _ in range(200)]
    assert all(80 <= d <= 120 for d in delays) and len({round(d, 3) for d in delays}) > 100
    assert retry_delay((10.0, 100.0), 1, 0.0) == 10.0


def test_two_secrets_give_two_signatures_each_verifiable_alone() -> None:
    old, new = new_secret(), new_secret()
    now = datetime.now(UTC)
    header = signature_header([new, old], "evt_1", now, '{"a":1}')
    assert len(header.split(" ")) == 2 and all(part.startswith("v1,") for part in header.split(" "))
    headers = {"webhook-id": "evt_1", "webhook-timestamp": str(int(now.timestamp())), "webhook-signature": header}
    for secret in (old, new):
        assert Webhook(secret).verify('{"a":1}', headers) == {"a": 1}

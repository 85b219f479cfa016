"""Request bodies as the routes read them, and Chalice's own error answers in the service's shape."""

from __future__ import annotations

import json

import pytest
from chalice import Response

from chalicelib.api.http import conform_chalice_error, parse_json_body
from chalicelib.domain.errors import BadRequest, PayloadTooLarge

LIMIT = 1000


def test_a_json_object_is_read() -> None:
    assert parse_json_body(b'{"a": [1, {"b": null}]}', LIMIT) == {"a": [1, {"b": None}]}


def test_one_utf8_byte_order_mark_is_ignored() -> None:
    assert parse_json_body(b'\xef\xbb\xbf{"a": 1}', LIMIT) == {"a": 1}


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (None, "empty"),
        (b"", "empty"),
        (b" \n\t", "empty"),
        (b"\xef\xbb\xbf", "empty"),
        (b'{"a": "\xff"}', "UTF-8"),
        ('{"a": "Jos\ufffd"}'.encode(), "UTF-8"),
        ('{"a": "Jos\u00e9"}'.encode("cp1252"), "UTF-8"),
        ('{"a": 1}'.encode("utf-16"), "UTF-8"),
        (b'{"a": 1, "a": 2}', "repeats a key"),
        (b'[{"x": {"a": 1, "a": 1}}]', "repeats a key"),
        (b'{"a": NaN}', "not valid JSON"),
        (b'{"a": -Infinity}', "not valid JSON"),
        (b'{"a": 1' + b"0" * 5000 + b"}", "not valid JSON"),
        (b"[" * 50_000 + b"]" * 50_000, "not valid JSON"),
        (b'{"a": 1} x', "line 1, column 10"),
    ],
)
def test_a_body_that_is_not_strict_utf8_json_is_a_bad_request(raw: bytes | None, words: str) -> None:
    with pytest.raises(BadRequest, match=words):
        parse_json_body(raw, 10**6)


def test_the_size_limit_is_checked_before_anything_else() -> None:
    with pytest.raises(PayloadTooLarge, match="1001 bytes; the limit is 1000"):
        parse_json_body(b" " * (LIMIT + 1), LIMIT)


def test_chalice_415_gets_the_service_error_shape_without_echoing_the_content_type() -> None:
    chalice = Response(
        body={"Code": "UnsupportedMediaType", "Message": "Unsupported media type: text/<script>"}, status_code=415
    )
    resp = conform_chalice_error(chalice)
    assert resp.status_code == 415
    assert resp.headers["Content-Type"] == "application/json"
    error = json.loads(resp.body)["error"]
    assert error["code"] == "unsupported_media_type" and "script" not in error["message"]


def test_chalice_405_keeps_its_allow_header_and_names_the_methods() -> None:
    chalice = Response(
        body={"Code": "MethodNotAllowedError", "Message": "Unsupported method: PUT"},
        status_code=405,
        headers={"Allow": "GET"},
    )
    resp = conform_chalice_error(chalice)
    assert resp.headers["Allow"] == "GET"
    assert json.loads(resp.body)["error"] == {
        "code": "method_not_allowed",
        "message": "this path does not answer that method; allowed: GET",
    }


def test_the_service_own_responses_pass_unchanged() -> None:
    ok = Response(body='{"a":1}', status_code=200)
    error = Response(body={"error": {"code": "not_found", "message": "m"}}, status_code=404)
    assert conform_chalice_error(ok) is ok
    assert conform_chalice_error(error) is error

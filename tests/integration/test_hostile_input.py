"""Hostile and careless requests through Chalice's test client: each gets its exact 4xx, JSON, and stores nothing."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.integration.helpers import batch, item, post, unique
from tests.support import hostile_requests

SQL_INJECTION = "x'; DROP TABLE payouts;--"
VALID_CPF = "52998224725"
# The same CPF in look-alike digits: fullwidth, Arabic-Indic, Devanagari.
HOMOGLYPH_CPFS = [
    VALID_CPF.translate(str.maketrans("0123456789", "０１２３４５６７８９")),
    VALID_CPF.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")),
    VALID_CPF.translate(str.maketrans("0123456789", "०१२३४५६७८९")),
]
JSON = {"Content-Type": "application/json"}


@pytest.fixture
def client(module_client: Any) -> Any:
    # One app and moto for the module: the table is long, and every request has its own ids.
    return module_client


@dataclass(frozen=True)
class Hostile:
    """A POST /batches body built around a fresh batch_id, the status it must get, and the error code."""

    build: Callable[[str], bytes]
    status: int
    code: str
    headers: dict[str, str] = field(default_factory=lambda: dict(JSON))


def raw(text: str) -> Callable[[str], bytes]:
    """A body given as JSON text; {b} stands for the batch_id and {e} for a fresh external_id."""
    return lambda b: text.replace("{b}", b).replace("{e}", unique("ext")).encode()


def one_item(**overrides: Any) -> Callable[[str], bytes]:
    return lambda b: json.dumps(batch(item(**overrides), batch_id=b)).encode()


def top_level(**overrides: Any) -> Callable[[str], bytes]:
    return lambda b: json.dumps({**batch(batch_id=b), **overrides}).encode()


def item_without(name: str) -> Callable[[str], bytes]:
    def build(b: str) -> bytes:
        it = item()
        del it[name]
        return json.dumps(batch(it, batch_id=b)).encode()

    return build


def item_renamed(name: str, to: str) -> Callable[[str], bytes]:
    def build(b: str) -> bytes:
        it = item()
        it[to] = it.pop(name)
        return json.dumps(batch(it, batch_id=b)).encode()

    return build


def amount_literal(literal: str) -> Callable[[str], bytes]:
    """An amount written straight into the JSON text, so literals json.dumps would not produce get through."""
    text = '{"batch_id":"{b}","items":[{"external_id":"{e}","user_id":"u","amount_cents":AMOUNT,"pix_key":"a@b.co"}]}'
    return raw(text.replace("AMOUNT", literal))


def items(count: int) -> Callable[[str], bytes]:
    return lambda b: json.dumps(batch(*[item() for _ in range(count)], batch_id=b)).encode()


def nested(depth: int) -> Callable[[str], bytes]:
    return lambda b: json.dumps(batch(batch_id=b))[:-1].encode() + b',"extra":' + b"[" * depth + b"]" * depth + b"}"


def over_the_size_limit(b: str) -> bytes:
    body = json.dumps(batch(item(), batch_id=b)).encode()
    return body + b" " * (5 * 1024 * 1024 + 1 - len(body))


POSTS: dict[str, Hostile] = {
    # --- the body as a whole
    "empty body": Hostile(lambda b: b"", 400, "bad_request"),
    "whitespace body": Hostile(lambda b: b" \r\n\t ", 400, "bad_request"),
    "not JSON": Hostile(raw("batch_id={b}"), 400, "bad_request"),
    "truncated JSON": Hostile(raw('{"batch_id":"{b}","items":['), 400, "bad_request"),
    "trailing garbage": Hostile(lambda b: json.dumps(batch(batch_id=b)).encode() + b" {}", 400, "bad_request"),
    "single quotes": Hostile(raw("{'batch_id':'{b}','items':[]}"), 400, "bad_request"),
    "JSON null": Hostile(lambda b: b"null", 422, "invalid_batch"),
    "JSON array": Hostile(lambda b: json.dumps([batch(batch_id=b)]).encode(), 422, "invalid_batch"),
    "JSON string": Hostile(lambda b: json.dumps(b).encode(), 422, "invalid_batch"),
    "JSON number": Hostile(lambda b: b"42", 422, "invalid_batch"),
    "JSON true": Hostile(lambda b: b"true", 422, "invalid_batch"),
    "over the size limit": Hostile(over_the_size_limit, 413, "payload_too_large"),
    "10,001 items": Hostile(items(10_001), 413, "batch_too_large"),
    "deeply nested arrays": Hostile(lambda b: b"[" * 100_000 + b"]" * 100_000, 400, "bad_request"),
    "deeply nested objects": Hostile(lambda b: b'{"a":' * 100_000 + b"1" + b"}" * 100_000, 400, "bad_request"),
    "nesting within the limit under an unknown key": Hostile(nested(200), 422, "invalid_batch"),
    # --- encodings
    "invalid UTF-8 bytes": Hostile(
        lambda b: b'{"batch_id":"' + b.encode() + b'\xff\xfe","items":[]}', 400, "bad_request"
    ),
    "overlong UTF-8 encoding": Hostile(
        lambda b: b'{"batch_id":"\xc0\xaf' + b.encode() + b'","items":[]}', 400, "bad_request"
    ),
    "UTF-16 body": Hostile(lambda b: json.dumps(batch(batch_id=b)).encode("utf-16"), 400, "bad_request"),
    "UTF-16 body without a BOM": Hostile(
        lambda b: json.dumps(batch(batch_id=b)).encode("utf-16-le"), 400, "bad_request"
    ),
    "Latin-1 body": Hostile(
        lambda b: json.dumps(batch(item(user_id="José"), batch_id=b), ensure_ascii=False).encode("latin-1"),
        400,
        "bad_request",
    ),
    "two byte order marks": Hostile(
        lambda b: b"\xef\xbb\xbf" * 2 + json.dumps(batch(batch_id=b)).encode(), 400, "bad_request"
    ),
    "raw NUL byte in a string": Hostile(raw('{"batch_id":"{b}\x00","items":[]}'), 400, "bad_request"),
    "raw newline in a string": Hostile(raw('{"batch_id":"{b}\n","items":[]}'), 400, "bad_request"),
    # --- JSON the standard library would take but a payments API must not
    "NaN amount": Hostile(amount_literal("NaN"), 400, "bad_request"),
    "Infinity amount": Hostile(amount_literal("Infinity"), 400, "bad_request"),
    "-Infinity amount": Hostile(amount_literal("-Infinity"), 400, "bad_request"),
    "an amount with 5000 digits": Hostile(amount_literal("1" + "0" * 5000), 400, "bad_request"),
    "duplicate batch_id key": Hostile(raw('{"batch_id":"{b}","batch_id":"{b}-2","items":[]}'), 400, "bad_request"),
    "duplicate amount_cents key": Hostile(
        raw(
            '{"batch_id":"{b}","items":[{"external_id":"{e}","user_id":"u","amount_cents":1,'
            '"amount_cents":100000000,"pix_key":"a@b.co"}]}'
        ),
        400,
        "bad_request",
    ),
    "duplicate key spelled with an escape": Hostile(
        raw('{"batch_id":"{b}","batch\\u005fid":"{b}","items":[]}'), 400, "bad_request"
    ),
    # --- amount_cents
    "amount 10**400": Hostile(amount_literal("1" + "0" * 400), 422, "invalid_batch"),
    "amount 1e400 (a float infinity)": Hostile(amount_literal("1e400"), 422, "invalid_batch"),
    "amount zero": Hostile(one_item(amount_cents=0), 422, "invalid_batch"),
    "amount minus zero": Hostile(amount_literal("-0"), 422, "invalid_batch"),
    "amount negative": Hostile(one_item(amount_cents=-1), 422, "invalid_batch"),
    "amount over the cap": Hostile(one_item(amount_cents=100_000_001), 422, "invalid_batch"),
    "amount float": Hostile(one_item(amount_cents=1.5), 422, "invalid_batch"),
    "amount integral float": Hostile(one_item(amount_cents=100.0), 422, "invalid_batch"),
    "amount in exponent notation": Hostile(amount_literal("1e2"), 422, "invalid_batch"),
    "amount string": Hostile(one_item(amount_cents="100"), 422, "invalid_batch"),
    "amount true": Hostile(one_item(amount_cents=True), 422, "invalid_batch"),
    "amount null": Hostile(one_item(amount_cents=None), 422, "invalid_batch"),
    "amount array": Hostile(one_item(amount_cents=[100]), 422, "invalid_batch"),
    "amount object": Hostile(one_item(amount_cents={"value": 100}), 422, "invalid_batch"),
    "amount missing": Hostile(item_without("amount_cents"), 422, "invalid_batch"),
    # --- ids
    "batch_id SQL injection": Hostile(
        lambda b: json.dumps(batch(batch_id=SQL_INJECTION)).encode(), 422, "invalid_batch"
    ),
    "external_id SQL injection": Hostile(one_item(external_id=SQL_INJECTION), 422, "invalid_batch"),
    "batch_id path traversal": Hostile(lambda b: json.dumps(batch(batch_id="../" + b)).encode(), 422, "invalid_batch"),
    "batch_id 65 characters": Hostile(
        lambda b: json.dumps(batch(batch_id=b + "x" * (65 - len(b)))).encode(), 422, "invalid_batch"
    ),
    "batch_id 100 KB": Hostile(lambda b: json.dumps(batch(batch_id=b + "x" * 100_000)).encode(), 422, "invalid_batch"),
    "batch_id escaped NUL": Hostile(lambda b: json.dumps(batch(batch_id=b + "\x00")).encode(), 422, "invalid_batch"),
    "batch_id lone surrogate": Hostile(raw('{"batch_id":"{b}\\ud800","items":[]}'), 422, "invalid_batch"),
    "batch_id fullwidth letters": Hostile(
        lambda b: json.dumps(batch(batch_id="ｂａｔｃｈ" + b)).encode(), 422, "invalid_batch"
    ),
    "batch_id number": Hostile(top_level(batch_id=12345), 422, "invalid_batch"),
    "batch_id null": Hostile(top_level(batch_id=None), 422, "invalid_batch"),
    "external_id empty": Hostile(one_item(external_id=""), 422, "invalid_batch"),
    "external_id array": Hostile(one_item(external_id=["a"]), 422, "invalid_batch"),
    "external_id repeated in the batch": Hostile(
        lambda b: json.dumps(batch(item(external_id=b + "-e"), item(external_id=b + "-e"), batch_id=b)).encode(),
        422,
        "invalid_batch",
    ),
    # --- user_id
    "user_id escaped NUL": Hostile(one_item(user_id="u\x00"), 422, "invalid_batch"),
    "user_id control character": Hostile(one_item(user_id="u\x1b[31m"), 422, "invalid_batch"),
    "user_id lone surrogate": Hostile(
        raw(
            '{"batch_id":"{b}","items":[{"external_id":"{e}","user_id":"\\udc00","amount_cents":1,"pix_key":"a@b.co"}]}'
        ),
        422,
        "invalid_batch",
    ),
    "user_id zero-width space": Hostile(one_item(user_id="u\u200b"), 422, "invalid_batch"),
    "user_id right-to-left override": Hostile(one_item(user_id="\u202eu1"), 422, "invalid_batch"),
    "user_id replacement character": Hostile(one_item(user_id="Jos\ufffd"), 422, "invalid_batch"),
    "user_id only spaces": Hostile(one_item(user_id="   "), 422, "invalid_batch"),
    "user_id 1 MB": Hostile(one_item(user_id="u" * 1_000_000), 422, "invalid_batch"),
    "user_id object": Hostile(one_item(user_id={"id": 1}), 422, "invalid_batch"),
    # --- pix_key
    **{
        f"CPF in look-alike digits ({name})": Hostile(one_item(pix_key=cpf), 422, "invalid_batch")
        for name, cpf in zip(["fullwidth", "Arabic-Indic", "Devanagari"], HOMOGLYPH_CPFS, strict=True)
    },
    "CPF with superscript digits": Hostile(one_item(pix_key="529982247²⁵"), 422, "invalid_batch"),
    "CPF with a NUL": Hostile(one_item(pix_key=VALID_CPF + "\x00"), 422, "invalid_batch"),
    "phone with a fullwidth digit": Hostile(one_item(pix_key="+55 11 9１234-5678"), 422, "invalid_batch"),
    "e-mail with a Cyrillic a": Hostile(one_item(pix_key="\u0430lice@example.com"), 422, "invalid_batch"),
    "e-mail SQL injection": Hostile(one_item(pix_key="a'--@example.com; DROP TABLE payouts"), 422, "invalid_batch"),
    "pix_key 1 MB": Hostile(one_item(pix_key="a" * 1_000_000 + "@example.com"), 422, "invalid_batch"),
    "pix_key number": Hostile(one_item(pix_key=52998224725), 422, "invalid_batch"),
    # --- structure
    "items null": Hostile(top_level(items=None), 422, "invalid_batch"),
    "items empty": Hostile(top_level(items=[]), 422, "invalid_batch"),
    "items an object": Hostile(top_level(items={"0": item()}), 422, "invalid_batch"),
    "items a string": Hostile(top_level(items="[]"), 422, "invalid_batch"),
    "an item null": Hostile(
        lambda b: json.dumps({"batch_id": b, "items": [item(), None]}).encode(), 422, "invalid_batch"
    ),
    "an item an array": Hostile(
        lambda b: json.dumps({"batch_id": b, "items": [[item()]]}).encode(), 422, "invalid_batch"
    ),
    "unknown top-level field": Hostile(top_level(priority="high"), 422, "invalid_batch"),
    "__proto__ field": Hostile(top_level(__proto__={"admin": True}), 422, "invalid_batch"),
    "misspelt item field": Hostile(item_renamed("amount_cents", "amount"), 422, "invalid_batch"),
    "extra item field": Hostile(one_item(amount=100), 422, "invalid_batch"),
    # --- Content-Type (Chalice answers 415 itself; the body is reshaped to the service's error)
    "text/plain": Hostile(
        lambda b: json.dumps(batch(batch_id=b)).encode(), 415, "unsupported_media_type", {"Content-Type": "text/plain"}
    ),
    "form encoded": Hostile(
        lambda b: f"batch_id={b}".encode(),
        415,
        "unsupported_media_type",
        {"Content-Type": "application/x-www-form-urlencoded"},
    ),
    "multipart": Hostile(
        lambda b: b"--x\r\n\r\n--x--",
        415,
        "unsupported_media_type",
        {"Content-Type": "multipart/form-data; boundary=x"},
    ),
    "application/jsonp": Hostile(
        lambda b: json.dumps(batch(batch_id=b)).encode(),
        415,
        "unsupported_media_type",
        {"Content-Type": "application/jsonp"},
    ),
    "JSON declared as Latin-1 and sent so": Hostile(
        lambda b: json.dumps(batch(item(user_id="José"), batch_id=b), ensure_ascii=False).encode("latin-1"),
        400,
        "bad_request",
        {"Content-Type": "application/json; charset=iso-8859-1"},
    ),
}


def counts(db: Any) -> tuple[int, int, int]:
    with db.cursor() as cur:
        cur.execute(
            "SELECT (SELECT count(*) FROM batches), (SELECT count(*) FROM payouts), (SELECT count(*) FROM batch_items)"
        )
        return cur.fetchone()


def batch_rows(db: Any, batch_id: str) -> int:
    with db.cursor() as cur:
        cur.execute("SELECT count(*) FROM batches WHERE batch_id = %s", (batch_id,))
        return cur.fetchone()[0]


def assert_error(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status_code == status, resp.body[:500]
    assert resp.headers["Content-Type"] == "application/json"
    error = json.loads(resp.body)["error"]
    assert error["code"] == code
    assert isinstance(error["message"], str) and error["message"]
    assert b"DROP TABLE" not in resp.body
    return error


@pytest.mark.parametrize("case", list(POSTS.values()), ids=list(POSTS))
def test_a_hostile_post_gets_its_4xx_and_stores_nothing(client, db, case: Hostile) -> None:
    batch_id = unique("hostile")
    before = counts(db)
    hostile_requests["table"] += 1
    resp = client.http.post("/batches", headers=case.headers, body=case.build(batch_id))
    error = assert_error(resp, case.status, case.code)
    if case.status == 422:
        assert error["problems"], "a 422 lists its problems"
    assert batch_rows(db, batch_id) == 0
    assert counts(db) == before


def cursor_of(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


GETS: dict[str, tuple[str, int, str]] = {
    "batch id %00": ("/batches/%00", 404, "not_found"),
    "batch id NUL, decoded as API Gateway passes it": ("/batches/\x00", 404, "not_found"),
    "batch id ..%2f": ("/batches/..%2f", 404, "not_found"),
    "batch id ..": ("/batches/..", 404, "not_found"),
    "batch id SQL injection": ("/batches/x';%20DROP%20TABLE%20batches;--", 404, "not_found"),
    "batch id SQL injection decoded": ("/batches/x'; DROP TABLE batches;--", 404, "not_found"),
    "batch id 10,000 characters": ("/batches/" + "b" * 10_000, 404, "not_found"),
    "batch id invalid UTF-8 escape": ("/batches/%ff%fe", 404, "not_found"),
    "batch id lone surrogate": ("/batches/\ud800", 404, "not_found"),
    "report of batch id NUL": ("/batches/\x00/report", 404, "not_found"),
    "report of a 10,000-character batch id": ("/batches/" + "b" * 10_000 + "/report", 404, "not_found"),
    "limit -1": ("/batches/b-1?limit=-1", 400, "bad_request"),
    "limit 0": ("/batches/b-1?limit=0", 400, "bad_request"),
    "limit 1001": ("/batches/b-1?limit=1001", 400, "bad_request"),
    "limit abc": ("/batches/b-1?limit=abc", 400, "bad_request"),
    "limit empty": ("/batches/b-1?limit=", 400, "bad_request"),
    "limit 1.5": ("/batches/b-1?limit=1.5", 400, "bad_request"),
    "limit +5": ("/batches/b-1?limit=%2B5", 400, "bad_request"),
    "limit with a space": ("/batches/b-1?limit=%205", 400, "bad_request"),
    "limit 10**30": ("/batches/b-1?limit=1" + "0" * 30, 400, "bad_request"),
    "limit with 5000 digits": ("/batches/b-1?limit=1" + "0" * 5000, 400, "bad_request"),
    "limit superscript two": ("/batches/b-1?limit=%C2%B2", 400, "bad_request"),
    "limit Arabic-Indic digits": ("/batches/b-1?limit=%D9%A1%D9%A2", 400, "bad_request"),
    "cursor garbage": ("/batches/b-1?cursor=nonsense!", 400, "bad_request"),
    "cursor NUL": ("/batches/b-1?cursor=%00", 400, "bad_request"),
    "cursor negative index": ("/batches/b-1?cursor=" + cursor_of("i:-1"), 400, "bad_request"),
    "cursor superscript index": ("/batches/b-1?cursor=" + cursor_of("i:²"), 400, "bad_request"),
    "cursor 5000-digit index": ("/batches/b-1?cursor=" + cursor_of("i:" + "9" * 5000), 400, "bad_request"),
    "cursor index past an integer": ("/batches/b-1?cursor=" + cursor_of("i:" + "9" * 11), 400, "bad_request"),
    "cursor in standard base64 of another shape": (
        "/batches/b-1?cursor=" + base64.b64encode(b"x:1").decode(),
        400,
        "bad_request",
    ),
    "cursor in hex": ("/batches/b-1?cursor=" + b"i:1".hex(), 400, "bad_request"),
    "cursor of UTF-16 text": (
        "/batches/b-1?cursor=" + base64.urlsafe_b64encode("i:1".encode("utf-16")).decode(),
        400,
        "bad_request",
    ),
    "payout id not a UUID": ("/payouts/not-a-uuid", 404, "not_found"),
    "payout id with a sign": ("/payouts/+1111111-1111-1111-1111-111111111111", 404, "not_found"),
    "payout id with an underscore": ("/payouts/1_111111-1111-1111-1111-111111111111", 404, "not_found"),
    "payout id in Arabic-Indic digits": ("/payouts/" + "١" * 8 + "-1111-1111-1111-111111111111", 404, "not_found"),
    "payout id in braces": ("/payouts/{11111111-1111-1111-1111-11111111111}", 404, "not_found"),
    "payout id as a URN": ("/payouts/urn:uuid:11111111-1111-1111-1111-111111111111", 404, "not_found"),
    "payout id with a NUL": ("/payouts/11111111-1111-1111-1111-111111111111\x00", 404, "not_found"),
    "payout id SQL injection": ("/payouts/' OR '1'='1", 404, "not_found"),
}


@pytest.mark.parametrize(("path", "status", "code"), list(GETS.values()), ids=list(GETS))
def test_a_hostile_get_gets_its_4xx(client, path: str, status: int, code: str) -> None:
    hostile_requests["table"] += 1
    error = assert_error(client.http.get(path), status, code)
    assert "\x00" not in error["message"] and len(error["message"]) < 200


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("DELETE", "/batches", "POST, GET"),
        ("PUT", "/batches", "POST"),
        ("POST", "/payouts", "GET"),
        ("DELETE", "/batches/b-1", "GET"),
        ("PATCH", "/payouts/x", "GET"),
    ],
)
def test_a_method_a_path_lacks_is_a_405_in_the_service_error_shape(
    client, method: str, path: str, allowed: str
) -> None:
    hostile_requests["table"] += 1
    error = assert_error(client.http.request(method, path, headers=JSON, body=b"{}"), 405, "method_not_allowed")
    assert allowed in error["message"]


def test_a_422_lists_at_most_1000_problems_and_counts_them_all(client, db) -> None:
    batch_id = unique("hostile")
    unknown = ",".join(f'"k{i}":0' for i in range(20_000))
    body = f'{{"batch_id":"{batch_id}","items":[{{{unknown}}}]}}'.encode()
    hostile_requests["table"] += 1
    resp = client.http.post("/batches", headers=JSON, body=body)
    error = assert_error(resp, 422, "invalid_batch")
    assert len(error["problems"]) == 1000
    assert "20004 problems" in error["message"]
    assert len(resp.body) < 200_000
    assert batch_rows(db, batch_id) == 0


def test_a_utf8_byte_order_mark_is_ignored(client) -> None:
    body = batch()
    resp = client.http.post("/batches", headers=JSON, body=b"\xef\xbb\xbf" + json.dumps(body).encode())
    assert resp.status_code == 201
    assert resp.json_body["batch_id"] == body["batch_id"]


def test_sql_in_a_user_id_is_stored_as_text_not_run(client, db) -> None:
    sql = "x'); DROP TABLE batches; --"
    body = batch(item(user_id=sql))
    resp = post(client, body)
    assert resp.status_code == 201
    payout = client.http.get(f"/payouts/{resp.json_body['payout_ids'][0]}").json_body
    assert payout["user_id"] == sql
    assert batch_rows(db, body["batch_id"]) == 1

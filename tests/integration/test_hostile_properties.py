"""Property-based hostile input: arbitrary JSON, near-valid batches and mangled bytes never get a 5xx."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.helpers import batch, item
from tests.support import hostile_requests

# deadline=None: a request goes through PostgreSQL and moto; function-scoped fixtures are safe
# to share across examples here because every example brings its own ids.
settings.register_profile(
    "hostile-api",
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
HOSTILE_API = settings.get_profile("hostile-api")

ALLOWED = {200, 201, 400, 409, 413, 422}
REFUSED = {400, 409, 413, 422}
JSON = {"Content-Type": "application/json"}
FIELDS = ("batch_id", "items", "external_id", "user_id", "amount_cents", "pix_key")

nasty_strings = st.sampled_from(
    [
        "",
        " ",
        "\x00",
        "\ud800",
        "\udfff",
        "\ufffd",
        "\u200b",
        "\u202e",
        "x'; DROP TABLE payouts;--",
        "../../etc/passwd",
        "529.982.247-25",
        "５２９９８２２４７２５",
        "+55 11 91234-5678",
        "u1@email.com",
        "123e4567-e89b-12d3-a456-426614174000",
        "a" * 65,
        "a" * 10_000,
        "1e400",
        "NaN",
    ]
)
# Control, format, surrogate and separator characters, and digits other than 0-9.
hostile_text = st.text(st.characters(categories=["Cc", "Cf", "Cs", "Zl", "Zp", "Zs", "Nd"]), min_size=1, max_size=8)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**400), max_value=10**400)
    | st.floats()
    | st.text()
    | hostile_text
    | nasty_strings
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


@pytest.fixture
def client(module_client: Any) -> Any:
    return module_client


def table_counts(db: Any) -> tuple[int, int, int]:
    with db.cursor() as cur:
        cur.execute(
            "SELECT (SELECT count(*) FROM batches), (SELECT count(*) FROM payouts), (SELECT count(*) FROM batch_items)"
        )
        return cur.fetchone()


def post_and_check(client: Any, db: Any, body: bytes, family: str) -> int:
    """POST the body; the answer is a documented status, a JSON error when refused, and a refusal stores nothing."""
    before = table_counts(db)
    hostile_requests[family] += 1
    resp = client.http.post("/batches", headers=JSON, body=body)
    assert resp.status_code in ALLOWED, (resp.status_code, resp.body[:300])
    if resp.status_code in REFUSED:
        assert isinstance(json.loads(resp.body)["error"]["code"], str)
    if resp.status_code in REFUSED or resp.status_code == 200:
        assert table_counts(db) == before
    return resp.status_code


@HOSTILE_API
@given(body=json_values)
def test_any_json_value_as_a_body_gets_a_4xx_or_a_success_never_a_5xx(client, db, body: Any) -> None:
    post_and_check(client, db, json.dumps(body).encode(), "hypothesis")


@st.composite
def mutations(draw: st.DrawFn) -> tuple[str, int, str, Any]:
    """One change to a valid 3-item batch: a field set to any JSON value, removed, or an unknown field added."""
    action = draw(st.sampled_from(["set", "set", "set", "delete", "add"]))
    where = draw(st.sampled_from(["item", "item", "top"]))
    index = draw(st.integers(min_value=0, max_value=2))
    names = ("batch_id", "items") if where == "top" else ("external_id", "user_id", "amount_cents", "pix_key")
    name = draw(st.sampled_from(names)) if action != "add" else draw(st.text(min_size=1, max_size=12))
    # Drawn by kind first: a flat one_of would give the hostile strings one branch in a dozen.
    value = draw(draw(st.sampled_from([nasty_strings, hostile_text, json_values])))
    return f"{where}:{action}", index, name, value


@HOSTILE_API
@given(mutation=mutations())
def test_a_near_valid_batch_with_one_field_mutated_never_gets_a_5xx(client, db, mutation: tuple) -> None:
    kind, index, name, value = mutation
    body: dict[str, Any] = batch(item(), item(), item())
    target = body if kind.startswith("top") else body["items"][index]
    if kind.endswith("set"):
        target[name] = value
    elif kind.endswith("delete"):
        target.pop(name, None)
    else:
        target.setdefault(name, value)
    post_and_check(client, db, json.dumps(body).encode(), "hypothesis")


@HOSTILE_API
@given(data=st.data())
def test_a_valid_body_with_its_bytes_mangled_never_gets_a_5xx(client, db, data: st.DataObject) -> None:
    text = json.dumps(batch(item(), item()), ensure_ascii=False).encode()
    start = data.draw(st.integers(min_value=0, max_value=len(text)))
    end = data.draw(st.integers(min_value=start, max_value=min(len(text), start + 8)))
    insert = data.draw(
        st.binary(max_size=8) | st.sampled_from([b"\xff", b"\x00", b'"', b"{", b"]", b"\\u", b"\xc0\xaf"])
    )
    post_and_check(client, db, text[:start] + insert + text[end:], "hypothesis")

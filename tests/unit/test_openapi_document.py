"""The OpenAPI document in chalicelib/api/openapi.json: valid, complete, and in step with the validator."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import schemathesis
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.api.http import openapi_document
from chalicelib.domain.batch_request import (
    MAX_AMOUNT_CENTS,
    MAX_ID_LENGTH,
    MAX_ITEMS_PER_BATCH,
    MAX_LISTED_PROBLEMS,
    BatchTooLarge,
    InvalidBatch,
    is_identifier,
    parse_batch_request,
)

DOCUMENT_FILE = Path(__file__).parents[2] / "chalicelib" / "api" / "openapi.json"
DOC: dict[str, Any] = json.loads(DOCUMENT_FILE.read_text(encoding="utf-8"))
SCHEMAS = DOC["components"]["schemas"]
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
# /docs and its assets are read by a browser, which cannot send the key header.
OPEN_OPERATIONS = {
    ("/health", "GET"),
    ("/docs", "GET"),
    ("/docs/swagger-ui.css", "GET"),
    ("/docs/swagger-ui-bundle.js", "GET"),
    # Efí authenticates itself with the secret of the registered URL (chalicelib/api/efi_webhook.py).
    ("/providers/efi/webhook", "POST"),
}


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method.upper(), op)
        for path, item in DOC["paths"].items()
        for method, op in item.items()
        if method in HTTP_METHODS
    ]


def test_the_document_is_valid_openapi_3_0() -> None:
    assert DOC["openapi"].startswith("3.0.")
    schemathesis.openapi.from_dict(copy.deepcopy(DOC)).validate()


def test_the_route_serves_the_packaged_document() -> None:
    assert json.loads(openapi_document()) == DOC


def test_the_document_describes_every_route_and_no_other() -> None:
    from app import app

    routes = {(path, method) for path, methods in app.routes.items() for method in methods}
    assert routes == {(path, method) for path, method, _ in operations()}


def test_every_operation_but_health_needs_an_api_key_as_the_routes_do() -> None:
    from app import app

    for path, methods in app.routes.items():
        for method, entry in methods.items():
            assert bool(entry.api_key_required) == ((path, method) not in OPEN_OPERATIONS), (path, method)
    assert DOC["components"]["securitySchemes"]["ApiKeyAuth"] == {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "the client's API key",
    }
    for path, method, op in operations():
        expected = [] if (path, method) in OPEN_OPERATIONS else [{"ApiKeyAuth": []}]
        assert op["security"] == expected, (path, method)


def test_every_error_response_has_the_error_body() -> None:
    for path, method, op in operations():
        for status, response in op["responses"].items():
            if int(status) < 400 or status == "403":  # 403 is API Gateway's own answer
                continue
            ref = response["$ref"].rsplit("/", 1)[1]
            schema = DOC["components"]["responses"][ref]["content"]["application/json"]["schema"]
            assert {"$ref": "#/components/schemas/Error"} in schema["allOf"], (path, method, status)


def test_the_request_limits_are_the_validators() -> None:
    identifier = SCHEMAS["Identifier"]
    assert (identifier["minLength"], identifier["maxLength"]) == (1, MAX_ID_LENGTH)
    amount = SCHEMAS["PayoutItem"]["properties"]["amount_cents"]
    assert (amount["type"], amount["minimum"], amount["maximum"]) == ("integer", 1, MAX_AMOUNT_CENTS)
    items = SCHEMAS["BatchRequest"]["properties"]["items"]
    assert (items["minItems"], items["maxItems"]) == (1, MAX_ITEMS_PER_BATCH)
    assert SCHEMAS["Error"]["properties"]["error"]["properties"]["problems"]["maxItems"] == MAX_LISTED_PROBLEMS
    for name in ("BatchRequest", "PayoutItem"):
        assert SCHEMAS[name]["additionalProperties"] is False


@settings(max_examples=300, deadline=None)
@given(
    value=st.text(st.sampled_from("aZ09._:-/ é\x00"), max_size=MAX_ID_LENGTH + 2)
    | st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,70}", fullmatch=True)
)
def test_the_identifier_schema_is_the_validators_rule(value: str) -> None:
    identifier = SCHEMAS["Identifier"]
    by_schema = 1 <= len(value) <= identifier["maxLength"] and re.search(identifier["pattern"], value) is not None
    assert by_schema == is_identifier(value)


# --- The request schema never refuses what the validator takes ------------------

REQUEST_SCHEMA = jsonschema_rs.Draft4Validator(
    {"$ref": "#/components/schemas/BatchRequest", "components": DOC["components"]}
)
SEED = DOC["paths"]["/batches"]["post"]["requestBody"]["content"]["application/json"]["example"]

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=70),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3),
    max_leaves=10,
)


def test_the_example_request_is_valid_for_both() -> None:
    assert REQUEST_SCHEMA.is_valid(SEED)
    parse_batch_request(SEED)


@settings(max_examples=300, deadline=None)
@given(
    where=st.sampled_from(["batch_id", "external_id", "user_id", "amount_cents", "pix_key", "items", "extra"]),
    value=values | st.sampled_from(["a" * 64, "a" * 65, " x", "\u200b", "\ufffd", 0, 1, MAX_AMOUNT_CENTS + 1]),
)
def test_a_body_the_validator_accepts_is_one_the_schema_accepts(where: str, value: Any) -> None:
    body = copy.deepcopy(SEED)
    if where in ("batch_id", "items"):
        body[where] = value
    elif where == "extra":
        body["items"][1]["note"] = value
    else:
        body["items"][1][where] = value
    try:
        parse_batch_request(body)
    except (InvalidBatch, BatchTooLarge):
        return
    assert REQUEST_SCHEMA.is_valid(body), body


def test_the_document_examples_do_not_collide_with_the_seed_batch() -> None:
    # schemathesis posts the examples during `make test`, into the database `make run` serves;
    # the README's curl of seeds/payouts_batch_example.json must still create its batch.
    seed = json.loads((DOCUMENT_FILE.parents[2] / "seeds" / "payouts_batch_example.json").read_text())
    text = DOCUMENT_FILE.read_text(encoding="utf-8")
    assert seed["batch_id"] not in text
    assert not any(f'"{it["external_id"]}"' in text for it in seed["items"])


def _without_nullable(node: Any) -> Any:
    """OpenAPI 3.0's nullable as JSON Schema: {"type": t, "nullable": true} -> {"type": [t, "null"]}."""
    if isinstance(node, list):
        return [_without_nullable(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _without_nullable(v) for k, v in node.items() if k != "nullable"}
    if node.get("nullable") and "type" in node:
        out["type"] = [node["type"], "null"]
    if node.get("nullable") and "enum" in node:
        out["enum"] = [*node["enum"], None]
    return out


def test_every_response_example_is_valid_for_its_schema() -> None:
    components = _without_nullable(DOC["components"])
    checked = 0
    for path, method, op in operations():
        for status, response in op["responses"].items():
            for media, content in response.get("content", {}).items():
                if "example" not in content:
                    continue
                schema = {**_without_nullable(content["schema"]), "components": components}
                assert jsonschema_rs.Draft4Validator(schema).is_valid(content["example"]), (path, method, status, media)
                checked += 1
    assert checked >= 3

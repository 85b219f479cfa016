"""Schemathesis against the deployed stack: every operation in /openapi.json, with valid and invalid data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support import hostile_requests

pytestmark = pytest.mark.e2e

PACKAGED_DOCUMENT = Path(__file__).resolve().parents[2] / "chalicelib" / "api" / "openapi.json"
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    # a request the document calls invalid must be refused with a 4xx, never taken
    negative_data_rejection,
]
# Fuzzing examples per operation (valid and invalid together); the examples and coverage phases
# add their own cases. About 450 requests, 30 s on the embedded stack.
EXAMPLES_PER_OPERATION = 60


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    # schemathesis 4.32's fixture-based loader renames the running test through Node._nodeid,
    # which pytest 9.2 no longer has; give it the attribute it reads (it only affects reporting).
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@pytest.fixture(scope="session")
def api_schema(stack: Any) -> Any:
    config = schemathesis.Config.from_dict(
        {
            "base-url": stack.url(""),
            "headers": {"x-api-key": stack.api_key},
            "request-timeout": 30,
            # Every request carries the key (above); the gateway's own 403 for a missing key is tested elsewhere.
            "generation": {"mode": "all", "max-examples": EXAMPLES_PER_OPERATION, "with-security-parameters": False},
            "phases": {"stateful": {"enabled": False}},
            # 404: a malformed path id names nothing; 413: more than 10,000 items
            "checks": {"negative_data_rejection": {"expected-statuses": ["400", "404", "413", "415", "422"]}},
        }
    )
    schema = schemathesis.openapi.from_url(
        stack.url("/openapi.json"), config=config, headers={"x-api-key": stack.api_key}
    )
    schema.validate()
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


# Schemathesis leaves out the operation that serves the document; the test below covers it.
@schema.parametrize()
@settings(deadline=None, suppress_health_check=list(HealthCheck))
def test_every_operation_answers_as_its_openapi_document_says(case: Any) -> None:
    hostile_requests["schemathesis"] += 1
    case.call_and_validate(checks=CHECKS)


def test_the_stack_serves_the_packaged_openapi_document(stack: Any) -> None:
    assert requests.get(stack.url("/openapi.json"), timeout=10).status_code == 403
    resp = stack.get("/openapi.json")
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json() == json.loads(PACKAGED_DOCUMENT.read_text(encoding="utf-8"))


def test_the_document_s_server_is_the_running_stack(stack: Any) -> None:
    # OpenAPI resolves a relative server URL against the document's own address (RFC 3986), as Swagger UI does.
    document_url = stack.url("/openapi.json")
    (server,) = stack.get("/openapi.json").json()["servers"]
    base = urljoin(document_url, server["url"]).rstrip("/")
    assert base == stack.api_url.rstrip("/")
    assert requests.get(f"{base}/health", timeout=30).status_code == 200
    assert requests.get(f"{base}/batches?limit=1", headers={"x-api-key": stack.api_key}, timeout=30).status_code == 200

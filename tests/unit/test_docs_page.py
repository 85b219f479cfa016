"""The /docs page: the OpenAPI document embedded intact, and assets from the pinned package only."""

from __future__ import annotations

import json
import re

from chalicelib.api.docs import ASSETS, docs_asset, docs_page
from chalicelib.api.http import openapi_document


def embedded_spec(page: str) -> str:
    match = re.search(r"spec: (.*),\n  dom_id", page)
    assert match is not None
    return match.group(1)


def test_the_page_embeds_the_served_document_so_reading_it_needs_no_key():
    spec = embedded_spec(docs_page())
    assert json.loads(spec) == json.loads(openapi_document())
    assert "<" not in spec  # nothing in the document can close or bend the <script> it sits in


def test_the_page_loads_nothing_but_its_own_assets():
    page = docs_page()
    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sorted(sources) == sorted(f"docs/{name}" for name in ASSETS)
    assert "//" not in "".join(sources)


def test_each_asset_is_the_pinned_swagger_ui_file():
    assert "SwaggerUIBundle" in docs_asset("swagger-ui-bundle.js")
    assert ".swagger-ui" in docs_asset("swagger-ui.css")

"""GET /docs: the OpenAPI document as a Swagger UI page, its assets served from the pinned swagger-ui-bundle."""

from __future__ import annotations

import functools
import html
import json

from swagger_ui_bundle import swagger_ui_path

from .http import openapi_document

# Served by this service itself (nothing from a CDN), named in the page relative to /docs.
ASSETS = {
    "swagger-ui.css": "text/css; charset=utf-8",
    "swagger-ui-bundle.js": "application/javascript; charset=utf-8",
}
# The pinned bundle never changes under one name: browsers may keep it a day.
ASSET_CACHE = "public, max-age=86400"

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} API reference</title>
<link rel="stylesheet" href="docs/swagger-ui.css">
<style>body {{ margin: 0; background: #fafafa; }}</style>
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/swagger-ui-bundle.js"></script>
<script>
window.ui = SwaggerUIBundle({{
  spec: {spec},
  dom_id: "#swagger-ui",
  deepLinking: true,
  docExpansion: "list",
  defaultModelsExpandDepth: 0,
  presets: [SwaggerUIBundle.presets.apis]
}});
</script>
</body>
</html>
"""


@functools.cache
def docs_page() -> str:
    """The page embeds the document, so reading the reference needs no API key (a browser cannot send one)."""
    doc = json.loads(openapi_document())
    # "</script>" or "<!--" in the document would end or bend the <script>; "\\u003c" is the same JSON string.
    spec = json.dumps(doc, separators=(",", ":")).replace("<", "\\u003c")
    return _PAGE.format(title=html.escape(doc["info"]["title"]), spec=spec)


@functools.cache
def docs_asset(name: str) -> str:
    return str((swagger_ui_path / name).read_text(encoding="utf-8"))

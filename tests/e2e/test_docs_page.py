"""GET /docs in headless Chromium: the page renders from the service's own assets and shows every route."""

from __future__ import annotations

import html
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.e2e
DOCUMENT = Path(__file__).resolve().parents[2] / "chalicelib" / "api" / "openapi.json"
# No network but the stack's: a page that reached for a CDN would render nothing.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,2400",
    # scripts run in virtual time until the page is idle, or for this long at most
    "--virtual-time-budget=20000",
]


def chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("chromium")
    assert binary, "chromium is not installed: `make test` installs it (the Makefile's browser target)"
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    profile.mkdir()
    return subprocess.run(
        [binary, *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_docs_page_renders_every_route_of_the_document_in_a_browser(stack: Any, tmp_path: Path) -> None:
    url = stack.url("/docs")
    dom = chromium(tmp_path, "--dump-dom", url)
    assert dom.returncode == 0, dom.stderr[-2000:]
    page = html.unescape(dom.stdout)
    # Swagger UI builds these from the document: present only if its script loaded and ran
    assert 'class="swagger-ui' in page
    paths = json.loads(DOCUMENT.read_text())["paths"]
    for path, item in paths.items():
        assert f'data-path="{path}"' in page, path
        for op in item.values():
            assert op["summary"] in page, (path, op["summary"])

    shot = tmp_path / "docs.png"
    done = chromium(tmp_path, f"--screenshot={shot}", url)
    assert done.returncode == 0, done.stderr[-2000:]
    png = shot.read_bytes()
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    # a blank page compresses to a few KB; the rendered reference is text and colour all the way down
    assert len(png) > 50_000, len(png)

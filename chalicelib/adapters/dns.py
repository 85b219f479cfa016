"""Name resolution for the webhook SSRF check: every address a host resolves to."""

from __future__ import annotations

import socket


def resolve(host: str, port: int) -> list[str]:
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})

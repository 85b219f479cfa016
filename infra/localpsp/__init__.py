"""A local stand-in for Efí's Pix-send API (mutual TLS, OAuth2, send/ask/list, webhooks, faults): a test double."""

from .certs import ClientFiles
from .server import LocalPsp, PspConfig

__all__ = ["ClientFiles", "LocalPsp", "PspConfig"]

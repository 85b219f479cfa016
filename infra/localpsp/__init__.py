"""A local stand-in for Efí's Pix-send API (mutual TLS, OAuth2, send/ask/list, webhooks, faults): a test double."""

from .server import LocalPsp, PspConfig

__all__ = ["LocalPsp", "PspConfig"]

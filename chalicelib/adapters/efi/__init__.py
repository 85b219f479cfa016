"""Efí's Pix-send API (PIX_PROVIDER=efi): mutual TLS, OAuth2, idEnvio-keyed sends, asks and lists."""

from .client import EfiProvider
from .credentials import EfiCredentials

__all__ = ["EfiCredentials", "EfiProvider"]

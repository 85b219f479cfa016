"""The local Efí-compatible PSP for integration tests: started on a free loopback port, reached over mutual TLS."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.efi import EfiCredentials, EfiProvider
from infra.localpsp import LocalPsp, PspConfig

PAYER_KEY = "payer@pix-payouts.example"


@pytest.fixture
def start_psp(tmp_path: Path) -> Iterator[Callable[..., LocalPsp]]:
    started: list[LocalPsp] = []

    def start(**settings: Any) -> LocalPsp:
        settings.setdefault("confirm_delay_ms", 50)
        psp = LocalPsp(PspConfig(state_dir=tmp_path / f"psp{len(started)}", **settings)).start()
        started.append(psp)
        return psp

    yield start
    for psp in started:
        psp.stop()


@pytest.fixture
def connect() -> Iterator[Callable[..., EfiProvider]]:
    clients: list[EfiProvider] = []

    def make(psp: LocalPsp, **options: Any) -> EfiProvider:
        files = psp.client_files
        assert files is not None
        credentials = EfiCredentials.from_files(str(files.cert), str(files.key), str(files.credentials), str(files.ca))
        client = EfiProvider(psp.base_url, credentials, PAYER_KEY, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def efi_env(psp: LocalPsp) -> dict[str, str]:
    """The settings that point the service (PIX_PROVIDER=efi) at this PSP, with the files it issued."""
    files = psp.client_files
    assert files is not None
    return {
        "PIX_PROVIDER": "efi",
        "EFI_BASE_URL": psp.base_url,
        "EFI_CERT_FILE": str(files.cert),
        "EFI_KEY_FILE": str(files.key),
        "EFI_CA_FILE": str(files.ca),
        "EFI_CREDENTIALS_FILE": str(files.credentials),
        "EFI_PAYER_KEY": PAYER_KEY,
    }


def eventually(check: Callable[[], Any], seconds: float = 10.0) -> Any:
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.02)

"""Which provider the embedded stack's functions get: PIX_STACK_PROVIDER at each `up`, else efi (the Efí adapter
and the local PSP), recorded in .stack/pix_provider for `status`, `env` and the operator commands."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.stacklib import psp_process


@pytest.fixture
def provider_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / ".stack" / "pix_provider"
    monkeypatch.setattr(psp_process, "PROVIDER_FILE", path)
    monkeypatch.setattr(psp_process, "PSP_DIR", tmp_path / ".stack" / "psp")
    monkeypatch.setattr(psp_process, "SECRET_FILE", tmp_path / ".stack" / "psp" / "webhook_secret")
    monkeypatch.delenv("PIX_STACK_PROVIDER", raising=False)
    return path


def test_without_the_variable_up_deploys_efi() -> None:
    assert psp_process.DEFAULT_PROVIDER == "efi"
    assert psp_process.requested({}) == "efi"
    assert psp_process.requested({"PIX_STACK_PROVIDER": ""}) == "efi"
    assert psp_process.requested({"PIX_STACK_PROVIDER": "sandbox"}) == "sandbox"
    assert psp_process.requested({"PIX_STACK_PROVIDER": "efi"}) == "efi"


def test_an_unknown_provider_is_refused_in_one_sentence() -> None:
    with pytest.raises(SystemExit, match=r"'efi' \(the default\) or 'sandbox', not 'efí'"):
        psp_process.requested({"PIX_STACK_PROVIDER": "efí"})


def test_a_fresh_stack_records_efi_and_its_functions_get_the_efi_adapter(provider_file: Path) -> None:
    assert psp_process.provider() == "efi"  # nothing recorded yet: what `up` would deploy
    lines: list[str] = []
    assert psp_process.record_choice(lines.append) == "efi"
    assert provider_file.read_text() == "efi\n"
    assert lines == ["provider: efi (the default; PIX_STACK_PROVIDER=sandbox for the in-database sandbox)"]
    env = psp_process.lambda_env()
    assert env["PIX_PROVIDER"] == "efi" and env["EFI_BASE_URL"] == psp_process.base_url()
    assert env["EFI_CERT_FILE"].endswith("client-cert.pem") and env["EFI_PAYER_KEY"] == psp_process.PAYER_KEY


def test_the_sandbox_is_named_to_the_functions_over_a_pix_provider_left_in_the_environment(
    provider_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIX_STACK_PROVIDER", "sandbox")
    monkeypatch.setenv("PIX_PROVIDER", "efi")
    psp_process.record_choice(lambda _: None)
    env = psp_process.lambda_env()
    assert env["PIX_PROVIDER"] == "sandbox" and "EFI_BASE_URL" not in env


def test_a_stack_brought_up_under_the_old_default_becomes_efi_at_the_next_up(provider_file: Path) -> None:
    provider_file.parent.mkdir(parents=True)
    provider_file.write_text("sandbox\n")  # what `up` wrote when sandbox was the default
    assert psp_process.provider() == "sandbox"  # the functions deployed then still use it
    lines: list[str] = []
    assert psp_process.record_choice(lines.append) == "efi"
    assert psp_process.provider() == "efi"
    assert lines == ["provider: efi (the default; PIX_STACK_PROVIDER=sandbox for the in-database sandbox, was sandbox)"]


def test_a_recorded_choice_gives_way_to_the_one_asked_for_and_to_none(
    provider_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PIX_STACK_PROVIDER", "sandbox")
    assert psp_process.record_choice(lambda _: None) == "sandbox"
    monkeypatch.setenv("PIX_STACK_PROVIDER", "efi")
    assert psp_process.provider() == "sandbox"  # the deployed functions' provider until `up` runs
    assert psp_process.record_choice(lambda _: None) == "efi"
    monkeypatch.setenv("PIX_STACK_PROVIDER", "sandbox")
    assert psp_process.record_choice(lambda _: None) == "sandbox"
    monkeypatch.delenv("PIX_STACK_PROVIDER")
    assert psp_process.record_choice(lambda _: None) == "efi"  # `make down && make up`: the default again
    assert provider_file.read_text() == "efi\n"


def test_an_unreadable_record_counts_as_none(provider_file: Path) -> None:
    provider_file.parent.mkdir(parents=True)
    provider_file.write_text("paypal\n")
    assert psp_process.recorded() is None
    assert psp_process.provider() == "efi"


def test_status_names_the_provider_in_use_and_the_switch_the_next_up_would_make() -> None:
    line = psp_process.provider_line
    assert line("efi", "efi", False) == "provider   : efi (the Efí adapter through the local PSP)"
    assert line("sandbox", "sandbox", True) == "provider   : sandbox (the in-database sandbox)"
    assert line("sandbox", "efi", False) == (
        "provider   : sandbox (the in-database sandbox); the next `up` switches to efi (the default)"
    )
    assert line("efi", "sandbox", True).endswith("the next `up` switches to sandbox (PIX_STACK_PROVIDER)")
    assert line(None, "efi", False) == "provider   : none deployed yet; `up` deploys efi (the default)"

"""Reconciliation's comparison: every kind of finding, amounts compared exactly, keys normalised and masked."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from chalicelib.domain.money import exact_centavos
from chalicelib.domain.reconciliation import (
    Finding,
    FindingKind,
    PayoutRecord,
    ProviderSend,
    compare,
    payout_named,
    previous_utc_day,
    same_pix_key,
)
from chalicelib.domain.send_id import send_id_for

KEY = "maria.silva@example.com"
K = FindingKind


def payout(status: str = "Completed", amount_cents: int = 35000, pix_key: str = KEY) -> PayoutRecord:
    return PayoutRecord(str(uuid.uuid4()), status, amount_cents, pix_key)


def send_for(
    record: PayoutRecord, status: str = "REALIZADO", valor: str | None = "350.00", pix_key: str | None = KEY
) -> ProviderSend:
    return ProviderSend(send_id_for(record.payout_id), status, valor, pix_key, "E09089356" + uuid.uuid4().hex[:23])


def kinds(findings: list[Finding]) -> list[FindingKind]:
    return [f.kind for f in findings]


def test_a_completed_payout_paid_once_with_its_amount_and_key_is_not_a_finding() -> None:
    ours = payout()
    assert compare([send_for(ours)], [ours]) == []


def test_paid_there_but_still_processing_here_is_a_finding() -> None:
    ours = payout("Processing")
    (finding,) = compare([send_for(ours)], [ours])
    assert (finding.kind, finding.payout_id, finding.here, finding.there) == (
        K.PAID_NOT_COMPLETED,
        ours.payout_id,
        "Processing",
        "REALIZADO",
    )


def test_paid_there_but_failed_here_is_a_finding() -> None:
    ours = payout("Failed")
    assert kinds(compare([send_for(ours)], [ours])) == [K.PAID_NOT_COMPLETED]


@pytest.mark.parametrize("status", ["EM_PROCESSAMENTO", "NAO_REALIZADO"])
def test_a_send_not_paid_there_is_not_a_finding_for_a_payout_not_completed_here(status: str) -> None:
    ours = payout("Processing" if status == "EM_PROCESSAMENTO" else "Failed")
    assert compare([send_for(ours, status)], [ours]) == []


def test_completed_here_and_missing_there_is_a_finding() -> None:
    ours = payout()
    (finding,) = compare([], [ours])
    assert (finding.kind, finding.payout_id, finding.send_id, finding.there) == (
        K.COMPLETED_NOT_PAID,
        ours.payout_id,
        None,
        "no send",
    )


@pytest.mark.parametrize("status", ["EM_PROCESSAMENTO", "NAO_REALIZADO"])
def test_completed_here_and_not_realizado_there_is_a_finding(status: str) -> None:
    ours = payout()
    (finding,) = compare([send_for(ours, status)], [ours])
    assert (finding.kind, finding.send_id, finding.there) == (K.COMPLETED_NOT_PAID, send_id_for(ours.payout_id), status)


@pytest.mark.parametrize(
    ("valor", "cents", "off"),
    [
        ("350.00", 35000, False),
        ("350.0", 35000, False),  # the same money, spelled with one place: still exactly 35000 centavos
        ("350", 35000, False),
        ("350.01", 35000, True),
        ("349.99", 35000, True),
        ("350.001", 35000, True),  # not a whole number of centavos: never rounded to one
        ("0.01", 1, False),
        ("10000000000000000.07", 10**18 + 7, False),  # past a float's exact integers
        ("10000000000000000.08", 10**18 + 7, True),
        ("350,00", 35000, True),
        ("-350.00", 35000, True),
        ("3.5e2", 35000, True),
        (None, 35000, True),
    ],
)
def test_amounts_are_compared_exactly_in_centavos(valor: str | None, cents: int, off: bool) -> None:
    ours = payout(amount_cents=cents)
    findings = compare([send_for(ours, valor=valor)], [ours])
    assert kinds(findings) == ([K.AMOUNT_MISMATCH] if off else [])
    if off:
        assert findings[0].there == (valor if valor is not None else "no amount")


@pytest.mark.parametrize(
    ("text", "cents"),
    [("350.00", 35000), ("350.0", 35000), ("350", 35000), ("0.10", 10), ("1200.010", 120001), ("007.50", 750)],
)
def test_exact_centavos_reads_any_number_of_places_without_a_float(text: str, cents: int) -> None:
    assert exact_centavos(text) == cents


@pytest.mark.parametrize("text", ["350.001", "0.005", "", ".50", "350.", " 350.00", "1e3", "١٢٣.00", 350, 350.0, None])
def test_exact_centavos_refuses_what_is_not_a_whole_number_of_centavos(text: object) -> None:
    assert exact_centavos(text) is None


@pytest.mark.parametrize(
    ("ours", "theirs", "same"),
    [
        ("maria.silva@example.com", "Maria.Silva@Example.COM", True),
        ("52998224725", "529.982.247-25", True),
        ("+5511912345678", "+55 (11) 91234-5678", True),
        ("maria.silva@example.com", "joao@example.com", False),
        ("52998224725", "11144477735", False),
        ("52998224725", None, False),
        ("maria.silva@example.com", "not a key", False),
    ],
)
def test_keys_are_compared_normalised(ours: str, theirs: str | None, same: bool) -> None:
    assert same_pix_key(ours, theirs) is same


def test_a_key_mismatch_names_both_keys_masked() -> None:
    ours = payout(pix_key="52998224725")
    (finding,) = compare([send_for(ours, pix_key="11144477735")], [ours])
    assert finding.kind is K.KEY_MISMATCH
    assert (finding.here, finding.there) == ("529.***.***-25", "111.***.***-35")
    assert "52998224725" not in str(finding.fields()) and "11144477735" not in str(finding.fields())


def test_two_transfers_there_for_one_payout_is_a_double_payment() -> None:
    ours = payout()
    first = send_for(ours)
    # The same payout's id spelled in capitals is another idEnvio to the provider: a second transfer.
    second = ProviderSend(first.send_id.upper(), "REALIZADO", "350.00", KEY, "E09089356" + "x" * 23)  # type: ignore[union-attr]
    findings = compare([first, second], [ours])
    assert kinds(findings) == [K.DOUBLE_PAYMENT]
    assert findings[0].payout_id == ours.payout_id
    assert "2 transfers" in findings[0].there
    assert first.end_to_end_id in findings[0].there and second.end_to_end_id in findings[0].there  # type: ignore[operator]


def test_a_rejected_first_try_and_a_paid_one_are_not_a_double_payment() -> None:
    ours = payout()
    first = send_for(ours, "NAO_REALIZADO")
    second = ProviderSend(first.send_id.upper(), "REALIZADO", "350.00", KEY)  # type: ignore[union-attr]
    assert compare([first, second], [ours]) == []


@pytest.mark.parametrize("send_id", [send_id_for(str(uuid.uuid4())), "manual0001", None])
def test_a_send_that_names_no_payout_of_ours_is_a_finding(send_id: str | None) -> None:
    stranger = ProviderSend(send_id, "REALIZADO", "99.90", "52998224725", "E09089356" + "y" * 23)
    (finding,) = compare([stranger], [])
    assert (finding.kind, finding.payout_id, finding.send_id) == (K.UNKNOWN_SEND, None, send_id)
    assert "99.90" in finding.there and "529.***.***-25" in finding.there
    assert "52998224725" not in finding.there


def test_findings_come_worst_first_and_each_payout_is_judged_on_its_own() -> None:
    double = payout()
    unpaid = payout()
    wrong_amount = payout()
    paid_twice = send_for(double)
    sends = [
        ProviderSend("manual0001", "REALIZADO", "1.00", KEY),
        send_for(wrong_amount, valor="350.01"),
        paid_twice,
        ProviderSend(paid_twice.send_id.upper(), "EM_PROCESSAMENTO", "350.00", KEY),  # type: ignore[union-attr]
    ]
    assert kinds(compare(sends, [unpaid, double, wrong_amount])) == [
        K.DOUBLE_PAYMENT,
        K.COMPLETED_NOT_PAID,
        K.AMOUNT_MISMATCH,
        K.UNKNOWN_SEND,
    ]


@pytest.mark.parametrize("send_id", ["0123456789abcdef0123456789abcdef", "0123456789ABCDEF0123456789ABCDEF"])
def test_a_send_id_names_the_payout_whose_hex_digits_it_spells(send_id: str) -> None:
    assert payout_named(send_id) == "01234567-89ab-cdef-0123-456789abcdef"


@pytest.mark.parametrize("send_id", ["manual0001", "0123456789abcdef0123456789abcdeg", "", None])
def test_other_send_ids_name_no_payout(send_id: str | None) -> None:
    assert payout_named(send_id) is None


@pytest.mark.parametrize(
    ("now", "since", "until"),
    [
        (datetime(2026, 12, 2, 3, 0, tzinfo=UTC), datetime(2026, 12, 1, tzinfo=UTC), datetime(2026, 12, 2, tzinfo=UTC)),
        (datetime(2026, 3, 1, 0, 0, tzinfo=UTC), datetime(2026, 2, 28, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
        (
            datetime.fromisoformat("2026-12-01T23:30:00-03:00"),  # already 02:30 on the 2nd in UTC
            datetime(2026, 12, 1, tzinfo=UTC),
            datetime(2026, 12, 2, tzinfo=UTC),
        ),
    ],
)
def test_a_daily_run_reconciles_the_previous_utc_day(now: datetime, since: datetime, until: datetime) -> None:
    assert previous_utc_day(now) == (since, until)

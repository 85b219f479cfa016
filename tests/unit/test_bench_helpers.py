"""Pure helpers of the benchmark harness (bench/): percentiles, payloads, message chunks, /proc parsing, the table."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime

import pytest

from bench import floors, procs, results, stackctl
from bench.payloads import SANDBOX_MAGIC_AMOUNTS, amount_for, batch_body, new_run_id
from bench.stats import per_thousand, percentile, ratio
from chalicelib.domain.batch_request import MAX_ITEMS_PER_BATCH, parse_batch_request
from chalicelib.settings import Settings


def test_percentile_interpolates_between_closest_ranks_like_numpy() -> None:
    assert percentile([4.0, 1.0, 3.0, 2.0], 50) == 2.5  # unsorted input
    assert percentile(list(range(1, 21)), 95) == pytest.approx(19.05)
    assert percentile([1.0, 2.0, 3.0], 0) == 1.0
    assert percentile([1.0, 2.0, 3.0], 100) == 3.0
    assert percentile([7.5], 95) == 7.5


def test_percentile_refuses_nothing_and_out_of_range() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_ratio_with_a_zero_floor_is_infinite_and_never_passes() -> None:
    assert ratio(3.0, 2.0) == 1.5
    assert math.isinf(ratio(3.0, 0.0))
    assert results.verdict(ratio(3.0, 0.0), 2.0) == "MISS"
    assert results.verdict(1.2, 1.2) == "OK"
    assert results.verdict(1.21, 1.2) == "MISS"
    assert per_thousand(2.5, 5000) == 0.5


def test_a_maximum_size_body_passes_the_apps_own_validation_and_fits_the_body_limit() -> None:
    body = batch_body(new_run_id(), "main", MAX_ITEMS_PER_BATCH)
    request = parse_batch_request(body)  # raises InvalidBatch on any bad item
    assert len(request.items) == MAX_ITEMS_PER_BATCH
    assert len({item.external_id for item in request.items}) == MAX_ITEMS_PER_BATCH
    assert {item.pix_key.type.value for item in request.items} == {"EMAIL"}
    assert len(json.dumps(body, separators=(",", ":")).encode()) < Settings.from_env({}).max_body_bytes


def test_amounts_never_hit_the_sandbox_magic_amounts() -> None:
    amounts = {amount_for(n) for n in range(100_000)}
    assert not amounts & SANDBOX_MAGIC_AMOUNTS
    assert min(amounts) >= 1


def test_two_runs_never_share_a_batch_or_an_external_id() -> None:
    a, b = batch_body(new_run_id(), "main", 3), batch_body(new_run_id(), "main", 3)
    assert a["batch_id"] != b["batch_id"]
    assert not {i["external_id"] for i in a["items"]} & {i["external_id"] for i in b["items"]}


def test_messages_come_in_chunks_of_ten_shaped_like_the_apps() -> None:
    chunks = floors.message_batches(10_005)
    assert [len(c) for c in chunks] == [10] * 1000 + [5]
    for chunk in (chunks[0], chunks[-1]):
        assert len({e["Id"] for e in chunk}) == len(chunk)
    body = json.loads(chunks[0][0]["MessageBody"])
    assert list(body) == ["payout_id"] and uuid.UUID(body["payout_id"])
    assert chunks[0][0]["MessageBody"] == json.dumps(body, separators=(",", ":"))


def test_copy_rows_have_one_value_per_copied_column_and_valid_end_to_end_ids() -> None:
    rows = floors.payout_rows("r1", 3)
    assert all(len(row) == len(floors.PAYOUT_COPY_COLUMNS.split(",")) for row in rows)
    assert len({row[0] for row in rows}) == 3 and len({row[7] for row in rows}) == 3
    assert all(len(row[7]) == 32 and row[7].startswith("E99999999") for row in rows)
    assert floors.csv_buffer(rows).read().count("\n") == 3


def test_proc_status_and_environ_parsing() -> None:
    status = "Name:\tpython3.11\nPPid:\t4242\nVmPeak:\t 999 kB\nVmHWM:\t   82880 kB\nVmRSS:\t   70000 kB\n"
    assert procs.parse_status(status) == {"PPid": 4242, "VmHWM": 82880, "VmRSS": 70000}
    env = procs.parse_environ(b"PATH=/bin\0AWS_LAMBDA_FUNCTION_NAME=pix-Settle-1\0EMPTY=\0A=b=c\0")
    assert env == {"PATH": "/bin", "AWS_LAMBDA_FUNCTION_NAME": "pix-Settle-1", "EMPTY": "", "A": "b=c"}


def test_peak_is_the_max_over_the_workers_of_one_function() -> None:
    workers = [
        procs.Worker(1, "pix-payouts-Settle-X", 60 * 1024, 0),
        procs.Worker(2, "pix-payouts-Settle-X", 70 * 1024, 0),
        procs.Worker(3, "pix-payouts-APIHandler-Y", 90 * 1024, 0),
    ]
    assert procs.peak_mb(workers, "settle") == 70.0
    assert procs.peak_mb(workers, "apihandler") == 90.0
    assert procs.peak_mb(workers, "nothing") == 0.0


def sample_result(ingest_ratio: float = 0.2, settle_ratio: float = 3.0) -> dict[str, object]:
    return {
        "ingest": {"items": 10000, "seconds": 0.4, "floor_seconds": 2.0, "ratio": ingest_ratio},
        "ingest_to_enqueued": {"items": 10000, "seconds": 2.4, "floor_seconds": 2.0, "ratio": 1.2},
        "end_to_end": {"items": 10000, "seconds": 12.0, "floor_seconds": 8.0, "ratio": 1.5},
        "settle": {"payouts": 10000, "seconds": 30.0, "floor_seconds": 10.0, "ratio": settle_ratio},
        "read": {"page_size": 500, "p50_ms": 80.0, "p95_ms": 95.0, "pages": 20},
        "memory": {"api_peak_rss_mb": 80.0, "settle_peak_rss_mb": 60.0},
        "scaling": [{"items": 1000, "seconds": 0.5}, {"items": 10000, "seconds": 2.2}],
    }


def test_table_marks_each_target_ok_or_miss_and_shows_growth_per_thousand() -> None:
    text = results.table(sample_result())
    ingest, enqueued, settle, e2e = text.splitlines()[:4]
    assert ingest.startswith("ingest") and ingest.endswith("OK") and "(target <= 0.3)" in ingest
    assert enqueued.startswith("enqueued") and enqueued.endswith("MISS") and "(target <= 1.0)" in enqueued
    assert settle.startswith("settle") and settle.endswith("MISS") and "(target <= 2.0)" in settle
    assert e2e.startswith("e2e") and e2e.endswith("OK") and "(target <= 2.0)" in e2e
    assert "0.500 s per 1,000 items" in text and "0.220 s per 1,000 items" in text


def test_validate_names_what_is_missing() -> None:
    broken = sample_result()
    del broken["read"]["p95_ms"]  # type: ignore[attr-defined]
    broken["scaling"] = []
    with pytest.raises(ValueError, match=r"read\.p95_ms.*scaling"):
        results.validate(broken)
    results.validate(sample_result())


def test_file_stamp_is_utc_and_sortable() -> None:
    assert results.file_stamp(datetime(2026, 1, 5, 14, 2, 33, tzinfo=UTC)) == "20260105T140233Z"


def test_table_puts_the_breakdowns_under_their_own_section() -> None:
    result = sample_result()
    result["ingest"]["phases_seconds"] = {"write_transaction": 0.2, "fan_out_after_reply": 1.8}  # type: ignore[index]
    result["settle"]["cpu_ms_per_payout"] = {"settle": 4.3, "ministack": 2.2}  # type: ignore[index]
    lines = results.table(result).splitlines()
    assert lines[0].startswith("ingest") and "write transaction 0.20 s, fan out after reply 1.80 s" in lines[1]
    assert lines[3].startswith("settle") and "settle 4.30, ministack 2.20" in lines[4]
    assert lines[5].startswith("e2e") and lines[6].startswith("read")


def test_the_median_round_is_the_middle_one_by_ratio_and_the_lower_middle_for_an_even_count() -> None:
    from bench.run import median_round

    rounds = [{"id": "a", "ratio": 2.3}, {"id": "b", "ratio": 1.7}, {"id": "c", "ratio": 1.9}]
    assert median_round(rounds, lambda r: r["ratio"])["id"] == "c"
    assert median_round(rounds[:2], lambda r: r["ratio"])["id"] == "b"
    assert median_round(rounds[:1], lambda r: r["ratio"])["id"] == "a"


def test_table_lists_every_rounds_ratio_under_its_section() -> None:
    result = sample_result()
    result["settle"]["rounds"] = [{"ratio": r} for r in (1.8, 2.1, 1.9)]  # type: ignore[index]
    lines = results.table(result).splitlines()
    assert lines[2].startswith("settle") and lines[3] == (
        "           ratio per round: 1.80, 2.10, 1.90  (the median round is shown above)"
    )


def test_round_rows_keep_each_rounds_seconds_floor_and_ratio_rounded() -> None:
    from bench.run import round_rows

    rounds = [{"settle_seconds": 7.12345, "settle_floor_seconds": 3.98765, "settle_ratio": 1.786543}]
    assert round_rows(rounds, "settle") == [{"seconds": 7.123, "floor_seconds": 3.988, "ratio": 1.79}]


def test_the_bench_measures_on_the_sandbox_whatever_the_stack_s_default() -> None:
    assert stackctl.PROVIDER == "sandbox"
    assert not stackctl.needs_up("sandbox", healthy=True, provider="sandbox")
    assert stackctl.needs_up("sandbox", healthy=True, provider="efi")  # the stack's default: switched for the run
    assert stackctl.needs_up("sandbox", healthy=False, provider="sandbox")
    assert stackctl.needs_up("sandbox", healthy=False, provider=None)


def test_restore_puts_back_the_provider_it_found_or_stops_what_it_started() -> None:
    found_efi = stackctl.Before(ministack=True, postgres=True, provider="efi")
    assert stackctl.restore_step(found_efi, "sandbox") == "switch"
    assert stackctl.restore_step(found_efi, "efi") == "nothing"  # settle_latency already restarted it on efi
    assert stackctl.restore_step(stackctl.Before(True, True, "sandbox"), "sandbox") == "nothing"
    assert stackctl.restore_step(stackctl.Before(False, False, None), "sandbox") == "down"


def test_settle_latency_leaves_the_stack_on_what_was_found_or_on_nothing_when_restore_stops_it() -> None:
    assert stackctl.back_to(stackctl.Before(True, True, "efi")) == "efi"
    assert stackctl.back_to(stackctl.Before(True, True, "sandbox")) == "sandbox"
    assert stackctl.back_to(stackctl.Before(False, True, None)) is None
    assert stackctl.back_to(None) == "sandbox"  # --no-stack: the running stack, which had to be on the sandbox


def test_the_stack_is_brought_up_with_the_bench_s_own_mode_not_the_caller_s(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIX_STACK_PROVIDER", "efi")
    monkeypatch.setenv("PSP_LATENCY_MS", "900")
    monkeypatch.setenv("SANDBOX_PIX_RULES", "none")  # a setting of the caller's, passed on as `make up` would
    env = stackctl.mode_env("sandbox")
    assert env["PIX_STACK_PROVIDER"] == "sandbox" and "PSP_LATENCY_MS" not in env
    assert env["SANDBOX_PIX_RULES"] == "none"
    efi = stackctl.mode_env("efi", PSP_LATENCY_MS="100")
    assert (efi["PIX_STACK_PROVIDER"], efi["PSP_LATENCY_MS"]) == ("efi", "100")

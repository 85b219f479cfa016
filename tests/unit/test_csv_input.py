"""Reading a payout spreadsheet: exact amounts in reais or centavos, and errors that name the line and column."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.client.commands import load_chunks
from chalicelib.client.csv_input import CsvError, read_payouts_csv, reais_to_cents
from chalicelib.domain.batch_request import MAX_ITEMS_PER_BATCH

HEADER = "external_id,user_id,amount,pix_key\n"


def one_amount(cell: str, header: str = HEADER) -> int:
    return read_payouts_csv(f"{header}e1,u1,{cell},u1@email.com\n".encode()).items[0]["amount_cents"]


@pytest.mark.parametrize(
    ("cell", "cents"),
    [
        ('"350,00"', 35000),
        ("350.00", 35000),
        ("350", 35000),
        ('"350,5"', 35050),
        ("0.01", 1),
        ("1000000.00", 100_000_000),
        ("  12.34 ", 1234),
        # 0.1 + 0.2 is not 0.3 in binary floating point; the reading never goes through float
        ("0.29", 29),
        ("1.15", 115),
        ("4.35", 435),
    ],
)
def test_an_amount_in_reais_reads_exactly_with_a_decimal_comma_or_point(cell, cents):
    assert one_amount(cell) == cents


@given(reais=st.integers(0, 10**9), centavos=st.integers(0, 99), sep=st.sampled_from([",", "."]))
def test_every_two_decimal_amount_is_its_exact_number_of_centavos(reais, centavos, sep):
    if reais == centavos == 0:
        return
    assert reais_to_cents(f"{reais}{sep}{centavos:02d}") == reais * 100 + centavos


@pytest.mark.parametrize(
    ("cell", "fragment"),
    [
        ('"1.234,56"', "thousands separator"),
        ('"1,234.56"', "thousands separator"),
        ("1.234", "thousands separator or more than two decimals"),
        ("1.005", "more than two decimals"),
        ("-10.00", "must be positive"),
        ('"0,00"', "more than zero"),
        ("0", "more than zero"),
        ('"R$ 10,00"', "not an amount in reais"),
        ("1e3", "not an amount in reais"),
        (".50", "not an amount in reais"),
        ("١٢", "not an amount in reais"),
    ],
)
def test_an_amount_that_is_not_plain_reais_is_refused_at_its_line_and_column(cell, fragment):
    with pytest.raises(CsvError) as caught:
        one_amount(cell)
    assert fragment in str(caught.value)
    assert (caught.value.line, caught.value.column, caught.value.name) == (2, 3, "amount")


@pytest.mark.parametrize(("cell", "cents"), [("35000", 35000), ("1", 1), ("007", 7)])
def test_amount_cents_is_a_whole_number(cell, cents):
    assert one_amount(cell, "external_id,user_id,amount_cents,pix_key\n") == cents


@pytest.mark.parametrize(("cell", "fragment"), [("350.00", "whole number"), ("-1", "positive"), ("0", "zero")])
def test_amount_cents_with_decimals_a_sign_or_zero_is_refused(cell, fragment):
    with pytest.raises(CsvError, match=fragment):
        one_amount(cell, "external_id,user_id,amount_cents,pix_key\n")


def test_a_byte_order_mark_and_crlf_line_ends_are_read_as_excel_writes_them():
    data = b"\xef\xbb\xbfexternal_id,user_id,amount_cents,pix_key\r\ne1,u1,100,a@b.com\r\ne2,u2,200,c@d.com\r\n"
    parsed = read_payouts_csv(data)
    assert [i["external_id"] for i in parsed.items] == ["e1", "e2"]
    assert parsed.lines == [2, 3]


def test_a_semicolon_separated_file_takes_decimal_commas_unquoted():
    parsed = read_payouts_csv(b"external_id;user_id;amount;pix_key\ne1;u1;350,00;u1@email.com\n")
    assert parsed.items == [{"external_id": "e1", "user_id": "u1", "amount_cents": 35000, "pix_key": "u1@email.com"}]


def test_columns_may_come_in_any_order_and_any_case_and_items_keep_the_api_field_order():
    parsed = read_payouts_csv(b"PIX_KEY, Amount_Cents ,user_id,external_id\na@b.com,100,u1,e1\n")
    assert list(parsed.items[0].items()) == [
        ("external_id", "e1"),
        ("user_id", "u1"),
        ("amount_cents", 100),
        ("pix_key", "a@b.com"),
    ]


def test_line_numbers_count_blank_lines_and_lines_inside_quoted_cells():
    data = b'external_id,user_id,amount_cents,pix_key\n\ne1,"two\nlines",100,a@b.com\n\ne2,u2,x,c@d.com\n'
    with pytest.raises(CsvError) as caught:
        read_payouts_csv(data)
    assert (caught.value.line, caught.value.column) == (6, 3)


@pytest.mark.parametrize(
    ("header", "fragment"),
    [
        ("external_id,user_id,pix_key", "lacks amount_cents or amount"),
        ("external_id,amount,pix_key", "lacks user_id"),
        ("user_id,amount", "lacks external_id, pix_key"),
        ("external_id,user_id,amount,amount_cents,pix_key", "only one of amount_cents and amount"),
        ("external_id,user_id,amount,pix_key,note", "unknown column 'note'"),
        ("external_id,user_id,amount,pix_key,user_id", "appears twice"),
    ],
)
def test_a_header_without_the_columns_the_api_needs_is_refused_on_line_1(header, fragment):
    with pytest.raises(CsvError) as caught:
        read_payouts_csv(f"{header}\n".encode())
    assert fragment in str(caught.value) and caught.value.line == 1


def test_an_empty_cell_a_short_line_and_a_header_alone_say_where():
    with pytest.raises(CsvError) as caught:
        read_payouts_csv(HEADER.encode() + b"e1,,100,a@b.com\n")
    assert (caught.value.line, caught.value.column, caught.value.name) == (2, 2, "user_id")
    with pytest.raises(CsvError, match="has 3 fields; the header has 4") as caught:
        read_payouts_csv(HEADER.encode() + b"e1,u1,100,a@b.com\ne2,u2,100\n")
    assert caught.value.line == 3
    with pytest.raises(CsvError, match="no payouts"):
        read_payouts_csv(HEADER.encode())
    with pytest.raises(CsvError, match="empty"):
        read_payouts_csv(b"")


def test_a_file_that_is_not_utf8_is_refused_at_the_line_of_its_first_bad_byte():
    with pytest.raises(CsvError, match="not UTF-8") as caught:
        read_payouts_csv(HEADER.encode() + b"e1,Jos\xe9,100,a@b.com\n")
    assert caught.value.line == 2


def test_a_file_over_the_batch_limit_is_split_into_numbered_batches_keeping_lines(tmp_path):
    rows = "".join(f"e{n},u{n},1,u{n}@b.com\n" for n in range(MAX_ITEMS_PER_BATCH + 2))
    path = tmp_path / "payroll.csv"
    path.write_text("external_id,user_id,amount,pix_key\n" + rows)
    chunks = load_chunks(path, "march")
    assert [(c.batch_id, len(c.items), c.first_index) for c in chunks] == [
        ("march-1", MAX_ITEMS_PER_BATCH, 0),
        ("march-2", 2, MAX_ITEMS_PER_BATCH),
    ]
    assert chunks[1].lines == [MAX_ITEMS_PER_BATCH + 2, MAX_ITEMS_PER_BATCH + 3]
    assert chunks[1].items[0]["external_id"] == f"e{MAX_ITEMS_PER_BATCH}"


def test_a_json_file_keeps_its_batch_id_and_a_csv_file_is_named_by_its_file(tmp_path):
    body = {"batch_id": "from-json", "items": [{"external_id": "e1"}]}
    (tmp_path / "b.json").write_text(json.dumps(body))
    assert [c.batch_id for c in load_chunks(tmp_path / "b.json", None)] == ["from-json"]
    assert [c.batch_id for c in load_chunks(tmp_path / "b.json", "override")] == ["override"]
    (tmp_path / "2026-03 payroll.csv").write_text(HEADER + "e1,u1,1,a@b.com\n")
    with pytest.raises(Exception, match="--batch-id"):
        load_chunks(tmp_path / "2026-03 payroll.csv", None)

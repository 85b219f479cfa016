"""Unit tests for parsing and validating batch payout requests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.batch_request import (
    MAX_AMOUNT_CENTS,
    MAX_ITEMS_PER_BATCH,
    MAX_LISTED_PROBLEMS,
    BatchRequest,
    BatchTooLarge,
    InvalidBatch,
    PayoutItem,
    Problem,
    is_identifier,
    parse_batch_request,
)
from chalicelib.domain.pix_keys import PixKey, PixKeyType

SEED_FILE = Path(__file__).parents[2] / "seeds" / "payouts_batch_example.json"


def _item(**overrides: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "external_id": "u1-001",
        "user_id": "u1",
        "amount_cents": 35000,
        "pix_key": "u1@email.com",
    }
    item.update(overrides)
    return item


def _body(*items: Any, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"batch_id": "2025-10-05-A", "items": list(items) or [_item()]}
    body.update(overrides)
    return body


def _problems(body: object, **kwargs: Any) -> list[Problem]:
    with pytest.raises(InvalidBatch) as caught:
        parse_batch_request(body, **kwargs)
    return caught.value.problems


def _keys(problems: list[Problem]) -> list[tuple[int | None, str, str]]:
    return [(p.index, p.field, p.code) for p in problems]


# --- Happy path ------------------------------------------------------------


def test_seed_file_parses() -> None:
    body = json.loads(SEED_FILE.read_text(encoding="utf-8"))

    request = parse_batch_request(body)

    assert request == BatchRequest(
        batch_id="2025-10-05-A",
        items=(
            PayoutItem(0, "u1-001", "u1", 35000, PixKey(PixKeyType.EMAIL, "u1@email.com")),
            PayoutItem(1, "u2-002", "u2", 120000, PixKey(PixKeyType.PHONE, "+5511912345678")),
        ),
    )


def test_fingerprint_is_the_content_that_defines_a_payout() -> None:
    item = parse_batch_request(_body(_item(pix_key="U1@Email.com"))).items[0]

    assert item.fingerprint() == ("u1-001", "u1", 35000, "EMAIL", "u1@email.com")


def test_amount_at_the_cap_is_accepted() -> None:
    request = parse_batch_request(_body(_item(amount_cents=MAX_AMOUNT_CENTS)))
    assert request.items[0].amount_cents == MAX_AMOUNT_CENTS


def test_default_limit_is_ten_thousand_items() -> None:
    assert MAX_ITEMS_PER_BATCH == 10_000


def test_batch_at_exactly_the_limit_is_accepted() -> None:
    items = [_item(external_id=f"id-{i}") for i in range(3)]
    assert len(parse_batch_request(_body(*items), max_items=3).items) == 3


# --- Body and top-level fields ---------------------------------------------


@pytest.mark.parametrize("body", [None, [], "text", 42, 1.5, True, [_item()]])
def test_body_that_is_not_an_object_gives_one_type_problem(body: object) -> None:
    assert _keys(_problems(body)) == [(None, "body", "type")]


def test_unknown_top_level_field_is_reported() -> None:
    assert _keys(_problems(_body(batchId="x"))) == [(None, "batchId", "unknown_field")]


@pytest.mark.parametrize(
    ("batch_id", "code"),
    [
        (None, "required"),
        (123, "type"),
        (["a"], "type"),
        ("", "empty"),
        ("a" * 65, "too_long"),
        ("-starts-with-dash", "format"),
        ("has space", "format"),
        ("has/slash", "format"),
        ("trailing-newline\n", "format"),
        ("ação", "format"),
    ],
)
def test_bad_batch_id_is_reported(batch_id: object, code: str) -> None:
    assert _keys(_problems(_body(batch_id=batch_id))) == [(None, "batch_id", code)]


def test_missing_batch_id_is_required() -> None:
    body = _body()
    del body["batch_id"]
    assert _keys(_problems(body)) == [(None, "batch_id", "required")]


@pytest.mark.parametrize("batch_id", ["a", "A" * 64, "2025-10-05-A", "x.y_z:1-2"])
def test_good_batch_id_is_accepted(batch_id: str) -> None:
    assert parse_batch_request(_body(batch_id=batch_id)).batch_id == batch_id


def test_missing_items_is_required() -> None:
    assert _keys(_problems({"batch_id": "b1"})) == [(None, "items", "required")]


@pytest.mark.parametrize("items", [{"a": 1}, "items", 3, (_item(),)])
def test_items_that_are_not_a_list_are_a_type_problem(items: object) -> None:
    assert _keys(_problems(_body(items=items))) == [(None, "items", "type")]


def test_empty_items_is_reported() -> None:
    assert _keys(_problems(_body(items=[]))) == [(None, "items", "empty")]


# --- Item fields -----------------------------------------------------------


@pytest.mark.parametrize("item", [None, "x", 1, [], [_item()]])
def test_item_that_is_not_an_object_is_a_type_problem(item: object) -> None:
    assert _keys(_problems(_body(_item(), item))) == [(1, "item", "type")]


def test_unknown_item_field_catches_typos() -> None:
    item = _item()
    item["amount"] = item.pop("amount_cents")

    problems = _problems(_body(item))

    assert set(_keys(problems)) == {(0, "amount", "unknown_field"), (0, "amount_cents", "required")}


@pytest.mark.parametrize("field", ["external_id", "user_id", "amount_cents", "pix_key"])
def test_missing_item_field_is_required(field: str) -> None:
    item = _item()
    del item[field]
    assert _keys(_problems(_body(item))) == [(0, field, "required")]


@pytest.mark.parametrize("field", ["external_id", "user_id", "amount_cents", "pix_key"])
def test_null_item_field_is_required(field: str) -> None:
    assert _keys(_problems(_body(_item(**{field: None})))) == [(0, field, "required")]


@pytest.mark.parametrize(
    ("external_id", "code"),
    [
        (7, "type"),
        ("", "empty"),
        ("e" * 65, "too_long"),
        (".hidden", "format"),
        ("a b", "format"),
    ],
)
def test_bad_external_id_is_reported(external_id: object, code: str) -> None:
    assert _keys(_problems(_body(_item(external_id=external_id)))) == [(0, "external_id", code)]


@pytest.mark.parametrize(
    ("user_id", "code"),
    [
        (1, "type"),
        ("", "empty"),
        ("   ", "empty"),
        ("u" * 65, "too_long"),
        ("u\x00", "format"),
        ("u\n1", "format"),
        ("u\u200b", "format"),
        ("\ud800", "format"),
        ("Jos\ufffd", "format"),
    ],
)
def test_bad_user_id_is_reported(user_id: object, code: str) -> None:
    assert _keys(_problems(_body(_item(user_id=user_id)))) == [(0, "user_id", code)]


@pytest.mark.parametrize("user_id", ["u1", "José da Silva", "u" * 64, "user@example.com"])
def test_printable_user_id_is_accepted(user_id: str) -> None:
    assert parse_batch_request(_body(_item(user_id=user_id))).items[0].user_id == user_id


@pytest.mark.parametrize("amount", [True, False, 100.0, 35000.5, "35000", [35000], {"v": 1}])
def test_amount_that_is_not_a_plain_integer_is_a_type_problem(amount: object) -> None:
    assert _keys(_problems(_body(_item(amount_cents=amount)))) == [(0, "amount_cents", "type")]


@pytest.mark.parametrize(
    "amount",
    # 10**5000 has too many digits for str(), so neither the id nor the message may format it.
    [0, -1, MAX_AMOUNT_CENTS + 1, pytest.param(10**5000, id="huge")],
)
def test_amount_out_of_range_is_reported(amount: int) -> None:
    assert _keys(_problems(_body(_item(amount_cents=amount)))) == [(0, "amount_cents", "range")]


@pytest.mark.parametrize("pix_key", [1, ["u1@email.com"], {"email": "u1@email.com"}])
def test_pix_key_that_is_not_a_string_is_a_type_problem(pix_key: object) -> None:
    assert _keys(_problems(_body(_item(pix_key=pix_key)))) == [(0, "pix_key", "type")]


@pytest.mark.parametrize("pix_key", ["", "529.982.247-24", "+55 10 91234-5678", "a@b", "x" * 78])
def test_invalid_pix_key_is_a_format_problem(pix_key: str) -> None:
    assert _keys(_problems(_body(_item(pix_key=pix_key)))) == [(0, "pix_key", "format")]


def test_pix_key_problem_message_does_not_echo_the_key() -> None:
    key = "first..last@example.com"

    [problem] = _problems(_body(_item(pix_key=key)))

    assert key not in problem.message
    assert "first" not in problem.message


# --- Duplicates ------------------------------------------------------------


def test_repeated_external_id_is_reported_on_every_later_occurrence() -> None:
    items = [
        _item(external_id="a"),
        _item(external_id="b"),
        _item(external_id="a"),
        _item(external_id="a"),
        _item(external_id="b"),
    ]

    problems = _problems(_body(*items))

    assert _keys(problems) == [
        (2, "external_id", "duplicate"),
        (3, "external_id", "duplicate"),
        (4, "external_id", "duplicate"),
    ]
    assert "item 0" in problems[0].message
    assert "item 0" in problems[1].message
    assert "item 1" in problems[2].message


def test_external_ids_differing_only_in_case_are_not_duplicates() -> None:
    request = parse_batch_request(_body(_item(external_id="abc"), _item(external_id="ABC")))
    assert [item.external_id for item in request.items] == ["abc", "ABC"]


# --- All-or-nothing --------------------------------------------------------


def test_every_problem_is_collected_into_one_error() -> None:
    body = {
        "batch_id": "",
        "extra": 1,
        "items": [
            _item(external_id="ok-1"),
            _item(external_id="bad-1", amount_cents=True),
            _item(external_id="bad-2", pix_key="nope"),
            "not an object",
            {"external_id": "ok-1", "user_id": "", "amount_cents": 1.0, "pix_key": None, "note": "x"},
        ],
    }

    problems = _problems(body)

    assert _keys(problems) == [
        (None, "extra", "unknown_field"),
        (None, "batch_id", "empty"),
        (1, "amount_cents", "type"),
        (2, "pix_key", "format"),
        (3, "item", "type"),
        (4, "note", "unknown_field"),
        (4, "external_id", "duplicate"),
        (4, "user_id", "empty"),
        (4, "amount_cents", "type"),
        (4, "pix_key", "required"),
    ]


def test_invalid_batch_message_counts_the_problems() -> None:
    with pytest.raises(InvalidBatch, match="3 problems"):
        parse_batch_request(
            _body(
                _item(external_id="a", amount_cents=0),
                _item(external_id="b", amount_cents=-1),
                _item(external_id="c", amount_cents=1.5),
            )
        )


def test_an_invalid_batch_lists_the_first_problems_and_counts_them_all() -> None:
    item = _item()
    item.update({f"k{i}": 0 for i in range(MAX_LISTED_PROBLEMS + 5)})

    with pytest.raises(InvalidBatch) as caught:
        parse_batch_request(_body(item))

    assert len(caught.value.problems) == MAX_LISTED_PROBLEMS
    assert caught.value.total == MAX_LISTED_PROBLEMS + 5
    assert str(caught.value) == f"batch request has {MAX_LISTED_PROBLEMS + 5} problems; the first 1000 are listed"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("2025-10-05-A", True), ("a" * 64, True), ("a" * 65, False), ("", False), ("..", False), ("a\x00", False)],
)
def test_is_identifier_says_whether_a_value_could_name_a_batch(value: str, expected: bool) -> None:
    assert is_identifier(value) is expected


def test_problem_as_dict_omits_a_missing_index() -> None:
    assert Problem(None, "batch_id", "required", "m").as_dict() == {
        "field": "batch_id",
        "code": "required",
        "message": "m",
    }
    assert Problem(3, "pix_key", "format", "m").as_dict() == {
        "index": 3,
        "field": "pix_key",
        "code": "format",
        "message": "m",
    }


def test_problems_are_json_serialisable() -> None:
    body = {"batch_id": None, "\ud800\x00" + "k" * 1000: 1, "items": [_item(pix_key="bad")]}

    problems = _problems(body)

    json.dumps([p.as_dict() for p in problems])
    assert all(len(p.field) <= 64 for p in problems)


# --- Size limit ------------------------------------------------------------


def test_too_many_items_raises_batch_too_large_with_count_and_limit() -> None:
    items = [_item(external_id=f"id-{i}") for i in range(4)]

    with pytest.raises(BatchTooLarge) as caught:
        parse_batch_request(_body(*items), max_items=3)

    assert (caught.value.count, caught.value.limit) == (4, 3)
    assert "3" in str(caught.value)


def test_batch_too_large_is_raised_before_looking_at_items() -> None:
    # Junk items would each be a problem; the size check must win.
    with pytest.raises(BatchTooLarge):
        parse_batch_request({"batch_id": "", "items": [None] * 5}, max_items=2)


# --- Properties ------------------------------------------------------------

json_like = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5),
    max_leaves=25,
)

field_values = json_like | st.sampled_from(
    ["u1@email.com", "+55 11 91234-5678", "52998224725", "", "a" * 100, "\x00", "\ud800"]
)

item_like = st.fixed_dictionaries(
    {},
    optional={
        "external_id": field_values,
        "user_id": field_values,
        "amount_cents": field_values,
        "pix_key": field_values,
        "amount": field_values,
    },
)

body_like = json_like | st.fixed_dictionaries(
    {},
    optional={
        "batch_id": field_values,
        "items": st.lists(item_like | json_like, max_size=6) | json_like,
        "extra": json_like,
    },
)


@settings(max_examples=200, deadline=None)
@given(body=body_like)
def test_parser_never_raises_anything_but_its_own_errors(body: object) -> None:
    try:
        parse_batch_request(body, max_items=4)
    except (InvalidBatch, BatchTooLarge):
        pass


@settings(max_examples=200, deadline=None)
@given(body=body_like)
def test_every_problem_has_a_known_code_and_a_json_safe_shape(body: object) -> None:
    try:
        parse_batch_request(body, max_items=4)
    except InvalidBatch as error:
        assert error.problems
        for problem in error.problems:
            assert problem.code in {
                "required",
                "type",
                "range",
                "format",
                "too_long",
                "duplicate",
                "unknown_field",
                "empty",
            }
            assert set(problem.as_dict()) <= {"index", "field", "code", "message"}
    except BatchTooLarge:
        pass


valid_ids = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9._:-]{0,63}\Z")
valid_keys = st.sampled_from(
    [
        ("u1@email.com", PixKey(PixKeyType.EMAIL, "u1@email.com")),
        ("+55 11 91234-5678", PixKey(PixKeyType.PHONE, "+5511912345678")),
        ("529.982.247-25", PixKey(PixKeyType.CPF, "52998224725")),
        ("11.222.333/0001-81", PixKey(PixKeyType.CNPJ, "11222333000181")),
        ("12abc34501de35", PixKey(PixKeyType.CNPJ, "12ABC34501DE35")),
        ("123E4567-E89B-12D3-A456-426614174000", PixKey(PixKeyType.EVP, "123e4567-e89b-12d3-a456-426614174000")),
    ]
)
valid_user_ids = st.text(
    # U+FFFD is refused: it is what a gateway leaves where bytes were not UTF-8
    alphabet=st.characters(codec="utf-8", categories=["L", "N", "P", "S"], exclude_characters="\ufffd"),
    min_size=1,
    max_size=64,
)
valid_items = st.lists(
    st.tuples(valid_ids, valid_user_ids, st.integers(1, MAX_AMOUNT_CENTS), valid_keys),
    min_size=1,
    max_size=20,
    unique_by=lambda t: t[0],
)


@settings(max_examples=200, deadline=None)
@given(batch_id=valid_ids, items=valid_items)
def test_valid_items_always_parse_and_keep_their_order(
    batch_id: str, items: list[tuple[str, str, int, tuple[str, PixKey]]]
) -> None:
    body = {
        "batch_id": batch_id,
        "items": [
            {"external_id": ext, "user_id": user, "amount_cents": amount, "pix_key": raw_key}
            for ext, user, amount, (raw_key, _) in items
        ],
    }

    request = parse_batch_request(body)

    assert request.batch_id == batch_id
    assert request.items == tuple(
        PayoutItem(index, ext, user, amount, key) for index, (ext, user, amount, (_, key)) in enumerate(items)
    )

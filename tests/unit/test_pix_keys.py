"""Unit tests for Pix key parsing, normalisation and masking."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.pix_keys import (
    InvalidPixKey,
    PixKey,
    PixKeyType,
    mask_pix_key,
    parse_pix_key,
)

VALID_KEYS: list[tuple[str, PixKeyType, str]] = [
    ("529.982.247-25", PixKeyType.CPF, "52998224725"),
    ("52998224725", PixKeyType.CPF, "52998224725"),
    ("111.444.777-35", PixKeyType.CPF, "11144477735"),
    ("11.222.333/0001-81", PixKeyType.CNPJ, "11222333000181"),
    ("11444777000161", PixKeyType.CNPJ, "11444777000161"),
    ("12ABC34501DE35", PixKeyType.CNPJ, "12ABC34501DE35"),
    ("12.abc.345/01de-35", PixKeyType.CNPJ, "12ABC34501DE35"),
    ("+55 11 91234-5678", PixKeyType.PHONE, "+5511912345678"),
    ("+55 (11) 91234-5678", PixKeyType.PHONE, "+5511912345678"),
    ("+5511912345678", PixKeyType.PHONE, "+5511912345678"),
    ("+55 21 3456-7890", PixKeyType.PHONE, "+552134567890"),
    ("u1@email.com", PixKeyType.EMAIL, "u1@email.com"),
    ("  Maria.Silva@Example.COM.br ", PixKeyType.EMAIL, "maria.silva@example.com.br"),
    ("123e4567-e89b-12d3-a456-426614174000", PixKeyType.EVP, "123e4567-e89b-12d3-a456-426614174000"),
    ("123E4567-E89B-12D3-A456-426614174000", PixKeyType.EVP, "123e4567-e89b-12d3-a456-426614174000"),
]


def _rejection(raw: str) -> str:
    with pytest.raises(InvalidPixKey) as caught:
        parse_pix_key(raw)
    return str(caught.value)


@pytest.mark.parametrize(("raw", "key_type", "normalised"), VALID_KEYS)
def test_valid_keys_are_detected_and_normalised(raw: str, key_type: PixKeyType, normalised: str) -> None:
    assert parse_pix_key(raw) == PixKey(key_type, normalised)


def test_invalid_pix_key_is_a_value_error() -> None:
    assert issubclass(InvalidPixKey, ValueError)


@pytest.mark.parametrize("raw", ["", "   ", "\t\n"])
def test_empty_or_blank_key_is_rejected(raw: str) -> None:
    assert "empty" in _rejection(raw)


def test_key_longer_than_77_characters_is_rejected() -> None:
    local = "a" * 64
    email = f"{local}@{'b' * 9}.com"
    assert len(email) == 78
    assert "77" in _rejection(email)


def test_key_of_exactly_77_characters_is_accepted() -> None:
    email = f"{'a' * 64}@{'b' * 8}.com"
    assert len(email) == 77
    assert parse_pix_key(email).type is PixKeyType.EMAIL


def test_surrounding_whitespace_does_not_count_towards_the_length_limit() -> None:
    email = f"{'a' * 64}@{'b' * 8}.com"
    assert parse_pix_key(f"   {email}   ").value == email


# --- CPF -------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["529.982.247-24", "52998224715", "111.444.777-53", "12345678900"])
def test_cpf_with_wrong_check_digit_is_rejected(raw: str) -> None:
    assert "CPF" in _rejection(raw)


@pytest.mark.parametrize("digit", "0123456789")
def test_cpf_with_all_digits_equal_is_rejected(digit: str) -> None:
    assert "CPF" in _rejection(digit * 11)


def test_bare_eleven_digits_are_treated_as_cpf_not_phone() -> None:
    # 11 digits that would be a valid São Paulo mobile without +55.
    assert "CPF" in _rejection("11912345678")
    assert parse_pix_key("52998224725").type is PixKeyType.CPF


def test_cpf_check_digit_zero_branch_is_handled() -> None:
    # 123.456.789-09: the first check digit comes from a remainder below 2.
    assert parse_pix_key("123.456.789-09") == PixKey(PixKeyType.CPF, "12345678909")


@pytest.mark.parametrize("raw", ["5299822472", "529982247251", "1234567890123"])
def test_digit_strings_of_other_lengths_are_rejected(raw: str) -> None:
    message = _rejection(raw)
    assert "11 digits" in message and "14" in message


def test_non_ascii_digits_are_not_accepted_as_cpf() -> None:
    arabic_indic = "".join(chr(0x0660 + int(d)) for d in "52998224725")
    _rejection(arabic_indic)


# --- CNPJ ------------------------------------------------------------------


@pytest.mark.parametrize("raw", ["11.222.333/0001-82", "11222333000191", "11444777000160", "12ABC34501DE36"])
def test_cnpj_with_wrong_check_digit_is_rejected(raw: str) -> None:
    assert "CNPJ" in _rejection(raw)


@pytest.mark.parametrize("digit", "0123456789")
def test_cnpj_with_all_digits_equal_is_rejected(digit: str) -> None:
    assert "CNPJ" in _rejection(digit * 14)


def test_alphanumeric_cnpj_is_upper_cased() -> None:
    assert parse_pix_key("12abc34501de35").value == "12ABC34501DE35"


def test_alphanumeric_cnpj_with_letters_in_check_positions_is_rejected() -> None:
    _rejection("12ABC34501DEAB")


def test_alphanumeric_cnpj_with_punctuation_is_accepted() -> None:
    assert parse_pix_key("12.ABC.345/01DE-35") == PixKey(PixKeyType.CNPJ, "12ABC34501DE35")


# --- Phone -----------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "+55 01 91234-5678",  # area code starting with 0
        "+55 10 91234-5678",  # area code below 11
        "+55 11 1234-567",  # subscriber number too short
        "+55 11 912345-67890",  # subscriber number too long
        "+55 11 81234-5678",  # 9-digit number not starting with 9
    ],
)
def test_brazilian_phone_with_bad_area_code_or_length_is_rejected(raw: str) -> None:
    assert "phone" in _rejection(raw)


@pytest.mark.parametrize("raw", ["+", "+0123456789", "+55 11 9abc-5678", "+1", "+12345678901234567", "++5511912345678"])
def test_phone_that_is_not_e164_is_rejected(raw: str) -> None:
    assert "phone" in _rejection(raw)


@pytest.mark.parametrize("raw", ["+1 415 555 2671", "+14155552671", "+44 20 7946 0958", "+351 912 345 678"])
def test_phone_outside_brazil_is_rejected(raw: str) -> None:
    assert "+55" in _rejection(raw)


# --- CPF and CNPJ punctuation ----------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "529/982/247/25",
        "5.2.9.9.8.2.2.4.7.2.5",
        "529-982-247-25",
        "529.982.247.25",
        "529982247-25",
        "52998224725-",
        "11/222/333/0001-81",
        "11.222.333.0001-81",
        "112.223.330/001-81",
        "12.ABC.345.01DE-35",
    ],
)
def test_document_with_other_punctuation_than_the_canonical_one_is_rejected(raw: str) -> None:
    assert "000.000.000-00" in _rejection(raw)


def test_canonical_cnpj_punctuation_is_accepted_for_numeric_cnpjs() -> None:
    assert parse_pix_key("11.444.777/0001-61") == PixKey(PixKeyType.CNPJ, "11444777000161")


def test_phone_with_non_ascii_digits_is_rejected() -> None:
    _rejection("+55" + "".join(chr(0x0660 + int(d)) for d in "11912345678"))


# --- E-mail ----------------------------------------------------------------


def test_email_is_case_folded() -> None:
    assert parse_pix_key("U1@Email.COM").value == "u1@email.com"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("user@localhost", "no TLD"),
        ("user@example.c", "one-letter TLD"),
        ("user@example.c0m", "TLD with a digit"),
        ("first..last@example.com", "double dot"),
        (".user@example.com", "leading dot"),
        ("user.@example.com", "trailing dot"),
        ("us er@example.com", "space in local part"),
        ("user@exa mple.com", "space in domain"),
        ("user@@example.com", "two @"),
        ("a@b@example.com", "two @"),
        ("@example.com", "empty local part"),
        ("user@", "empty domain"),
        ("user@.example.com", "empty label"),
        ("user@example..com", "empty label"),
        ("user@-example.com", "label starting with dash"),
        ("user@example-.com", "label ending with dash"),
        ("user@exam_ple.com", "underscore in domain"),
        ("josé@example.com", "non-ASCII"),
        ("user\x00@example.com", "control character"),
        ("user@example.com\x7f", "DEL character"),
        (f"{'a' * 65}@example.com", "local part over 64"),
        (f"user@{'a' * 64}.com", "label over 63"),
    ],
)
def test_invalid_email_is_rejected(raw: str, reason: str) -> None:
    assert "e-mail" in _rejection(raw), reason


def test_email_local_part_may_use_rfc_special_characters() -> None:
    assert parse_pix_key("a+b_c!#$%&'*/=?^`{|}~-d@example.com").type is PixKeyType.EMAIL


def test_email_too_long_is_rejected() -> None:
    _rejection(f"{'a' * 64}@{'b' * 20}.com")


# --- EVP -------------------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    [
        "123e4567-e89b-12d3-a456-42661417400",  # one hex digit short
        "123e4567-e89b-12d3-a456-4266141740000",  # one too many
        "123e4567e89b12d3a456426614174000",  # no dashes
        "123e4567-e89b-12d3-a456-42661417400g",  # non-hex
        "{123e4567-e89b-12d3-a456-426614174000}",  # braces
        "123e4567-e89b12d3-a456-4266-14174000",  # dashes in the wrong places
    ],
)
def test_evp_with_wrong_shape_is_rejected(raw: str) -> None:
    _rejection(raw)


def test_evp_with_wrong_shape_gets_an_evp_specific_message() -> None:
    assert "EVP" in _rejection("123e4567-e89b-12d3-a456-42661417400")


# --- Messages never leak the key ------------------------------------------

LEAKY_INVALID_KEYS = [
    "529.982.247-24",
    "11222333000182",
    "+55 10 91234-5678",
    "first..last@example.com",
    "123e4567-e89b-12d3-a456-42661417400",
    "not-a-key-at-all",
    "x" * 100,
]


@pytest.mark.parametrize("raw", LEAKY_INVALID_KEYS)
def test_rejection_message_never_contains_the_key(raw: str) -> None:
    message = _rejection(raw)
    assert raw not in message
    assert raw.strip().lower() not in message.lower()


def test_non_string_key_is_rejected_with_invalid_pix_key() -> None:
    with pytest.raises(InvalidPixKey):
        parse_pix_key(52998224725)  # type: ignore[arg-type]


# --- Masking ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("u1@email.com", "u1***@e***.com"),
        ("529.982.247-25", "529.***.***-25"),
        ("52998224725", "529.***.***-25"),
        ("11.222.333/0001-81", "11.***.***/****-81"),
        ("+55 11 91234-5678", "+55 11 *****-5678"),
        ("+552134567890", "+55 21 ****-7890"),
        ("123e4567-e89b-12d3-a456-426614174000", "123e4567-****-****-****-************"),
    ],
)
def test_mask_has_the_documented_shape(raw: str, expected: str) -> None:
    assert mask_pix_key(raw) == expected


@pytest.mark.parametrize(("raw", "key_type", "normalised"), VALID_KEYS)
def test_mask_never_contains_the_full_key(raw: str, key_type: PixKeyType, normalised: str) -> None:
    for value in (raw, normalised):
        masked = mask_pix_key(value)
        assert normalised not in masked
        assert normalised.lower() not in masked.lower()
        assert raw.strip() not in masked
        assert masked != value


@pytest.mark.parametrize("raw", [*LEAKY_INVALID_KEYS, "abcde", "ab***", "  spaced  "])
def test_mask_of_unparseable_input_keeps_two_characters(raw: str) -> None:
    masked = mask_pix_key(raw)
    assert masked != raw
    assert masked in (raw[:2] + "***", "***")


def test_mask_of_very_short_input_does_not_fail() -> None:
    assert mask_pix_key("") == "***"
    assert mask_pix_key("a") == "a***"


# --- Properties ------------------------------------------------------------

key_like_text = st.text(max_size=90) | st.from_regex(r"\A[0-9.\-/ +()@a-zA-Z]{0,80}\Z")


@settings(max_examples=200, deadline=None)
@given(raw=key_like_text)
def test_parsing_any_text_gives_a_key_or_invalid_pix_key(raw: str) -> None:
    try:
        key = parse_pix_key(raw)
    except InvalidPixKey as error:
        assert len(raw.strip()) <= 4 or raw.strip() not in str(error)
    else:
        assert len(key.value) <= 77
        assert parse_pix_key(key.value) == key


@settings(max_examples=200, deadline=None)
@given(raw=key_like_text)
def test_mask_never_returns_a_longer_input_unchanged(raw: str) -> None:
    masked = mask_pix_key(raw)
    if len(raw) > 4:
        assert masked != raw

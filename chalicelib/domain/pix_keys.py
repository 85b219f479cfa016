"""Pix keys (DICT): detection, validation, normalisation and log masking."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from .uuids import is_uuid

MAX_KEY_LENGTH = 77

# Explicit [0-9] rather than \d everywhere: \d also matches non-ASCII digits
# such as Arabic-Indic ones, which int() would then silently accept.
_E164_RE = re.compile(r"\+[1-9][0-9][0-9]{1,14}")
_DIGITS_RE = re.compile(r"[0-9]+")
_ALNUM_CNPJ_RE = re.compile(r"[0-9A-Z]{12}[0-9]{2}")
# ASCII without spaces and control characters (what isspace/isprintable refuse among ASCII): one
# regex instead of a Python test per character, the costliest step of validating e-mail keys under a profiler.
_VISIBLE_ASCII_RE = re.compile(r"[\x21-\x7e]*")
_EMAIL_LOCAL_RE = re.compile(r"[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}")
_DOMAIN_LABEL_RE = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_TLD_RE = re.compile(r"[a-z]{2,63}")
_EVP_LIKE_RE = re.compile(r"[0-9A-Fa-f-]+")
# Documents come bare or in their one canonical punctuation; "529/982/247/25" is a typo, not a CPF.
_CPF_CANONICAL_RE = re.compile(r"[0-9]{3}\.[0-9]{3}\.[0-9]{3}-[0-9]{2}")
_CNPJ_CANONICAL_RE = re.compile(r"[0-9A-Za-z]{2}\.[0-9A-Za-z]{3}\.[0-9A-Za-z]{3}/[0-9A-Za-z]{4}-[0-9]{2}")
_DOCUMENT_MARKS = frozenset(".-/")

_DOCUMENT_PUNCTUATION = str.maketrans("", "", ".-/")
_PHONE_PUNCTUATION = str.maketrans("", "", " -().")

_CNPJ_WEIGHTS_1 = (5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)
_CNPJ_WEIGHTS_2 = (6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2)


class PixKeyType(StrEnum):
    CPF = "CPF"
    CNPJ = "CNPJ"
    PHONE = "PHONE"
    EMAIL = "EMAIL"
    EVP = "EVP"


@dataclass(frozen=True, slots=True)
class PixKey:
    type: PixKeyType
    value: str


class InvalidPixKey(ValueError):
    """Raised for an unusable key; the message never contains the key itself."""


def parse_pix_key(raw: str) -> PixKey:
    """Detect the type of a Pix key, validate it and return its normalised form.

    Detection order: EVP (UUID), e-mail (contains "@"), phone (starts with
    "+"), then CPF/CNPJ, bare or in their canonical punctuation
    ("000.000.000-00", "00.000.000/0000-00").

    A bare 11-digit string is always a CPF, never a phone: DICT writes phones
    in E.164 with a leading "+", so "11912345678" is checked as a CPF and a
    phone must be given as "+5511912345678" (spaces, dashes, dots and
    parentheses are accepted and removed). Pix phone keys are Brazilian: +55 only.
    """
    if not isinstance(raw, str):
        raise InvalidPixKey("pix key must be a string")
    text = raw.strip()
    if not text:
        raise InvalidPixKey("pix key is empty")
    if len(text) > MAX_KEY_LENGTH:
        raise InvalidPixKey(f"pix key is longer than {MAX_KEY_LENGTH} characters")

    lowered = text.lower()
    if text.isascii() and is_uuid(lowered):
        return PixKey(PixKeyType.EVP, lowered)
    if "@" in text:
        return PixKey(PixKeyType.EMAIL, _normalise_email(text))
    if text.startswith("+"):
        return PixKey(PixKeyType.PHONE, _normalise_phone(text))

    if _CPF_CANONICAL_RE.fullmatch(text) or _CNPJ_CANONICAL_RE.fullmatch(text):
        compact = text.translate(_DOCUMENT_PUNCTUATION)
    elif _DOCUMENT_MARKS.intersection(text):
        looks_like_uuid = text.count("-") >= 4 or not text.replace("-", "").isdigit()
        if _EVP_LIKE_RE.fullmatch(text) and text.count("-") >= 2 and looks_like_uuid:
            raise InvalidPixKey("random pix key (EVP) must be a UUID like 8-4-4-4-12 hex digits")
        raise InvalidPixKey(
            "CPF and CNPJ pix keys must be bare or punctuated exactly as 000.000.000-00 or 00.000.000/0000-00"
        )
    else:
        compact = text
    if _DIGITS_RE.fullmatch(compact):
        if len(compact) == 11:
            return PixKey(PixKeyType.CPF, _check_cpf(compact))
        if len(compact) == 14:
            return PixKey(PixKeyType.CNPJ, _check_cnpj(compact))
        raise InvalidPixKey(
            "numeric pix key must have 11 digits (CPF) or 14 (CNPJ); phone keys must start with + and the country code"
        )
    upper = compact.upper()
    if compact.isascii() and _ALNUM_CNPJ_RE.fullmatch(upper):
        return PixKey(PixKeyType.CNPJ, _check_cnpj(upper))
    raise InvalidPixKey("pix key is not a valid CPF, CNPJ, phone, e-mail or random key")


def mask_pix_key(value: str) -> str:
    """Return a recognisable but partial form of a key, safe for logs (LGPD)."""
    if not isinstance(value, str):
        return "***"
    try:
        key = parse_pix_key(value)
    except InvalidPixKey:
        masked = value[:2] + "***"
    else:
        masked = _MASKERS[key.type](key.value)
    # An input already shaped like a mask would otherwise come back verbatim.
    if masked == value:
        return "***"
    return masked


def _normalise_email(text: str) -> str:
    if not text.isascii():
        raise InvalidPixKey("e-mail pix key must contain only ASCII characters")
    if not _VISIBLE_ASCII_RE.fullmatch(text):
        raise InvalidPixKey("e-mail pix key must not contain spaces or control characters")
    email = text.lower()
    if email.count("@") != 1:
        raise InvalidPixKey("e-mail pix key must contain exactly one @")
    local, domain = email.split("@")
    if not _EMAIL_LOCAL_RE.fullmatch(local):
        raise InvalidPixKey("e-mail pix key has an invalid part before the @")
    if local.startswith(".") or local.endswith(".") or ".." in local:
        raise InvalidPixKey("e-mail pix key has misplaced dots before the @")
    labels = domain.split(".")
    if len(labels) < 2:
        raise InvalidPixKey("e-mail pix key domain must have a top-level domain")
    if not all(_DOMAIN_LABEL_RE.fullmatch(label) for label in labels):
        raise InvalidPixKey("e-mail pix key has an invalid domain")
    if not _TLD_RE.fullmatch(labels[-1]):
        raise InvalidPixKey("e-mail pix key top-level domain must be letters only")
    return email


def _normalise_phone(text: str) -> str:
    phone = text.translate(_PHONE_PUNCTUATION)
    if not _E164_RE.fullmatch(phone):
        raise InvalidPixKey("phone pix key must be + followed by 3 to 16 digits (E.164)")
    if not phone.startswith("+55"):
        raise InvalidPixKey("phone pix key must be a Brazilian number: +55, a 2-digit area code and 8 or 9 digits")
    national = phone[3:]
    if len(national) not in (10, 11):
        raise InvalidPixKey("Brazilian phone pix key must have a 2-digit area code and 8 or 9 digits")
    if not 11 <= int(national[:2]) <= 99:
        raise InvalidPixKey("Brazilian phone pix key has an invalid area code")
    if len(national) == 11 and national[2] != "9":
        raise InvalidPixKey("Brazilian 9-digit phone number must start with 9")
    return phone


def _check_cpf(digits: str) -> str:
    if len(set(digits)) == 1:
        raise InvalidPixKey("CPF with all digits equal is not valid")
    numbers = [int(ch) for ch in digits]
    first = _mod11_digit(sum(n * w for n, w in zip(numbers[:9], range(10, 1, -1), strict=False)))
    second = _mod11_digit(sum(n * w for n, w in zip(numbers[:10], range(11, 1, -1), strict=False)))
    if (first, second) != (numbers[9], numbers[10]):
        raise InvalidPixKey("CPF check digits do not match")
    return digits


def _check_cnpj(chars: str) -> str:
    """Validate numeric or alphanumeric CNPJ; characters are valued ord(c) - 48."""
    if len(set(chars)) == 1:
        raise InvalidPixKey("CNPJ with all digits equal is not valid")
    values = [ord(ch) - 48 for ch in chars]
    first = _mod11_digit(sum(v * w for v, w in zip(values[:12], _CNPJ_WEIGHTS_1, strict=False)))
    second = _mod11_digit(sum(v * w for v, w in zip(values[:13], _CNPJ_WEIGHTS_2, strict=False)))
    if (first, second) != (values[12], values[13]):
        raise InvalidPixKey("CNPJ check digits do not match")
    return chars


def _mod11_digit(total: int) -> int:
    remainder = total % 11
    return 0 if remainder < 2 else 11 - remainder


def _mask_email(email: str) -> str:
    local, domain = email.split("@")
    tld = domain.rsplit(".", 1)[1]
    return f"{local[:2]}***@{domain[0]}***.{tld}"


def _mask_cpf(cpf: str) -> str:
    return f"{cpf[:3]}.***.***-{cpf[-2:]}"


def _mask_cnpj(cnpj: str) -> str:
    return f"{cnpj[:2]}.***.***/****-{cnpj[-2:]}"


def _mask_phone(phone: str) -> str:
    digits = phone[1:]
    if digits.startswith("55") and len(digits) in (12, 13):
        hidden = "*" * (len(digits) - 8)
        return f"+55 {digits[2:4]} {hidden}-{digits[-4:]}"
    if len(digits) >= 8:
        return f"+{digits[:2]} {'*' * (len(digits) - 6)}-{digits[-4:]}"
    return f"+{digits[:2]}***"


def _mask_evp(evp: str) -> str:
    return f"{evp[:8]}-****-****-****-************"


_MASKERS: dict[PixKeyType, Callable[[str], str]] = {
    PixKeyType.CPF: _mask_cpf,
    PixKeyType.CNPJ: _mask_cnpj,
    PixKeyType.PHONE: _mask_phone,
    PixKeyType.EMAIL: _mask_email,
    PixKeyType.EVP: _mask_evp,
}

"""One UUID pattern with two case rules: lowercase for ids the service wrote, either case for ids a caller typed."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from chalicelib.domain.uuids import is_any_case_uuid, is_uuid

LOWER = "0b7f3c1e-5d2a-4c8b-9e6f-1a2b3c4d5e6f"
OPENAPI = Path(__file__).parents[2] / "chalicelib" / "api" / "openapi.json"


def test_a_lowercase_uuid_passes_both_rules_and_an_uppercase_one_only_the_any_case_rule() -> None:
    assert is_uuid(LOWER) and is_any_case_uuid(LOWER)
    assert not is_uuid(LOWER.upper()) and is_any_case_uuid(LOWER.upper())


@pytest.mark.parametrize(
    "text",
    [
        "{" + LOWER + "}",
        "urn:uuid:" + LOWER,
        LOWER.replace("-", ""),
        LOWER + "\n",
        LOWER[:-1] + "\u0661",  # an Arabic-Indic digit, which uuid.UUID() would take
        LOWER[:-1] + "\uff41",  # a fullwidth a
        LOWER[:-1] + "g",
        "",
    ],
)
def test_anything_but_36_ascii_characters_in_the_8_4_4_4_12_form_is_refused_by_both(text: str) -> None:
    assert not is_uuid(text) and not is_any_case_uuid(text)


def test_the_api_document_states_the_any_case_rule_for_ids_in_paths() -> None:
    patterns = set(re.findall(r'"pattern": "(\^\[0-9a-fA-F\][^"]*)"', OPENAPI.read_text()))
    assert patterns
    for pattern in patterns:
        for text in (LOWER, LOWER.upper(), LOWER[:-1] + "g", LOWER.replace("-", "")):
            assert (re.fullmatch(json.loads(f'"{pattern}"'), text) is not None) == is_any_case_uuid(text)

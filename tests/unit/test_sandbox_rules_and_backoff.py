"""Sandbox provider rules and the retry backoff, which need no I/O."""

from __future__ import annotations

import random

import pytest

from chalicelib.adapters.sandbox_pix import DEFAULT_RULES, Rule, parse_rules
from chalicelib.services.settlement import backoff_seconds


def test_the_default_rules_cover_every_failure_the_tests_need():
    rules = parse_rules("")
    assert parse_rules(DEFAULT_RULES) == rules
    assert {r.action for r in rules.values()} == {
        "reject",
        "transient",
        "timeout",
        "slow",
        "crash_before",
        "crash_after",
    }
    assert rules[66601] == Rule("reject", "AC03")


def test_rules_can_be_replaced_or_switched_off():
    assert parse_rules("500:transient:1") == {500: Rule("transient", "1")}
    assert parse_rules("none") == {}


@pytest.mark.parametrize("text", ["abc:reject:AC03", "100:explode:1", "100:transient:x", "100:slow:"])
def test_a_malformed_rule_is_refused_with_a_clear_message(text):
    with pytest.raises(ValueError, match="bad sandbox rule"):
        parse_rules(text)


def test_backoff_grows_exponentially_with_jitter_and_is_capped():
    rng = random.Random(7)
    for attempt, (low, high) in {1: (1, 2), 2: (2, 4), 3: (4, 8), 4: (8, 16)}.items():
        values = {backoff_seconds(attempt, 2, 300, rng) for _ in range(200)}
        assert min(values) >= low and max(values) <= high
        assert len(values) > 1
    assert max(backoff_seconds(30, 2, 300, rng) for _ in range(50)) <= 300


def test_the_infrastructure_backoff_stays_capped_however_often_a_message_came_back():
    rng = random.Random(7)
    waits = [backoff_seconds(n, 2.0, 120.0, rng) for n in (1, 2, 3, 10, 50, 500, 5000)]
    assert waits[0] <= 2 and all(60 <= w <= 120 for w in waits[4:])

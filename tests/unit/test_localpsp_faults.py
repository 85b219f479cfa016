"""The local PSP's faults by amount: the documented defaults parse, and a malformed rule is refused."""

from __future__ import annotations

import pytest

from infra.localpsp.callbacks import callback_target
from infra.localpsp.faults import DEFAULT_FAULTS, Fault, parse_faults


def test_the_default_faults_cover_every_documented_action() -> None:
    actions = {fault.action for fault in parse_faults("").values()}

    assert actions == {"reject", "fail", "error", "throttle", "timeout", "slow", "lost", "duplicate", "late"}
    assert parse_faults("") == parse_faults(DEFAULT_FAULTS)


def test_rules_replace_the_defaults_and_none_disables_them() -> None:
    assert parse_faults("100:fail:AC06, 200:late:50") == {100: Fault("fail", "AC06"), 200: Fault("late", "50")}
    assert parse_faults("none") == {}


@pytest.mark.parametrize(
    "rule", ["x:fail:AC03", "100:explode", "100:error", "100:error:two", "100:lost:3", "100:fail:"]
)
def test_a_malformed_rule_is_refused(rule: str) -> None:
    with pytest.raises(ValueError, match="bad fault"):
        parse_faults(rule)


@pytest.mark.parametrize(
    ("registered", "called"),
    [
        ("https://api.example/webhook", "https://api.example/webhook/pix"),
        ("https://api.example/webhook/", "https://api.example/webhook/pix"),
        ("https://api.example/webhook?hmac=s3cret&ignorar=", "https://api.example/webhook?hmac=s3cret&ignorar="),
    ],
)
def test_the_webhook_goes_to_url_slash_pix_unless_the_url_says_ignorar(registered: str, called: str) -> None:
    assert callback_target(registered) == called

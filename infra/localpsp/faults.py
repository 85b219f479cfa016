"""Faults chosen by the exact amount of a send (in centavos), so a test picks its path by its amount.

reject:<nome>    refused in the request: 400 with that nome (422 for pagamento_negado); nothing sent
fail:<SPI code>  accepted (201), then settled NAO_REALIZADO with erro.codigo = the code (e.g. AC03)
error:<N>        the first N sends under an idEnvio answer 500 erro_aplicacao; nothing sent
throttle:<N>     the first N sends under an idEnvio answer 429 with Retry-After; nothing sent
timeout:<N>      the first N sends under an idEnvio are executed, then the answer never comes in time
slow:<MS>        the send waits MS milliseconds before it answers
lost             settled, but the webhook never comes (polling must find it)
duplicate        the webhook comes twice
late:<MS>        the webhook comes MS milliseconds after the settlement
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_FAULTS = (
    "66601:fail:AC03,66606:fail:AC06,66607:fail:AC07,66602:reject:chave_invalida,66603:reject:pagamento_negado,"
    "66699:error:2,66696:throttle:1,66698:timeout:1,66697:slow:1500,66691:lost,66690:duplicate,66689:late:5000"
)
_WHOLE_NUMBER = {"error", "throttle", "timeout", "slow", "late"}
_NAMED = {"reject", "fail"}
_BARE = {"lost", "duplicate"}


@dataclass(frozen=True, slots=True)
class Fault:
    action: str
    arg: str = ""

    @property
    def number(self) -> int:
        return int(self.arg) if self.arg.isdigit() else 0


def parse_faults(text: str) -> dict[int, Fault]:
    """ "<amount_cents>:<action>[:<arg>],..."; empty means DEFAULT_FAULTS, "none" means none."""
    text = text.strip() or DEFAULT_FAULTS
    if text.lower() == "none":
        return {}
    faults: dict[int, Fault] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        amount, action, arg = [*part.split(":", 2), "", ""][:3]
        valid = amount.isdigit() and (
            (action in _WHOLE_NUMBER and arg.isdigit())
            or (action in _NAMED and arg.replace("_", "").isalnum())
            or (action in _BARE and not arg)
        )
        if not valid:
            raise ValueError(f"bad fault {part!r}: expected <amount_cents>:<action>[:<arg>]  (see this module)")
        faults[int(amount)] = Fault(action, arg)
    return faults

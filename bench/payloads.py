"""Valid, unique batch bodies for the benchmark (e-mail keys, amounts clear of the sandbox's magic ones)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

# amount_cents the sandbox provider treats specially (README, "The sandbox Pix provider")
SANDBOX_MAGIC_AMOUNTS = frozenset({66601, 66606, 66607, 66697, 66698, 66699})


def new_run_id() -> str:
    """Short, sortable, unique per run: UTC time plus random hex (ids stay well under 64 chars)."""
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:6]


def amount_for(n: int) -> int:
    """100..999 cents, cycling: never one of the sandbox's magic amounts."""
    return 100 + n % 900


def batch_body(run_id: str, label: str, items: int) -> dict[str, object]:
    """A POST /batches body with `items` payouts whose external_ids are unique to (run_id, label)."""
    prefix = f"bench-{run_id}-{label}"
    return {
        "batch_id": prefix,
        "items": [
            {
                "external_id": f"{prefix}-{n}",
                "user_id": f"u{n}",
                "amount_cents": amount_for(n),
                "pix_key": f"bench.{label}.{n}@example.com",
            }
            for n in range(items)
        ],
    }

"""How many payouts have been open (Pending or Processing) for too long: what the operator's alarm watches."""

from __future__ import annotations

from .database import Database, one


class OpenPayouts:
    def __init__(self, db: Database) -> None:
        self.db = db

    def older_than(self, seconds: int) -> int:
        """Open payouts accepted more than `seconds` ago (the partial index on open payouts keeps it cheap)."""
        with self.db.statement() as cur:
            cur.execute(
                "SELECT count(*) FROM payouts WHERE status IN ('Pending', 'Processing')"
                " AND created_at < now() - make_interval(secs => %s)",
                (seconds,),
            )
            return int(one(cur)[0])

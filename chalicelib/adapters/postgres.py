"""The payout repository: one object over the batch writes, payout reads, settlement and recovery statements.

A facade, so wiring, the worker and the tests keep one repository; the services type each use case
against the narrow port it needs (services/ports.py).
"""

from __future__ import annotations

from .batch_writes import BatchWriter, BatchWrites, is_external_id_race
from .database import Database
from .payout_reads import PayoutReads
from .payout_rows import LOCK_BY_ID as _LOCK_BY_ID
from .recovery_store import RecoveryStatements
from .settlement_store import SettlementStatements

__all__ = ["_LOCK_BY_ID", "BatchWriter", "Database", "PayoutRepository", "is_external_id_race"]


class PayoutRepository(BatchWrites, PayoutReads, SettlementStatements, RecoveryStatements):
    """Every part shares the one Database (adapters/database.py)."""

    def __init__(self, db: Database) -> None:
        self.db = db

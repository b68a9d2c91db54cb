"""Replication records: the interface and its backends (SQLite default, Tablestore in production)."""

from acrsync.ledger.base import (
    OPEN_STATUSES,
    Attempt,
    ErrorInfo,
    ImageRef,
    Ledger,
    LedgerError,
    Origin,
    Page,
    Record,
    RejectedEvent,
    Report,
    Status,
    VersionConflict,
    record_key,
)
from acrsync.ledger.factory import open_ledger as open_ledger

__all__ = [
    "OPEN_STATUSES", "Attempt", "ErrorInfo", "ImageRef", "Ledger", "LedgerError", "Origin", "Page", "Record",
    "RejectedEvent", "Report", "Status", "VersionConflict", "record_key",
]

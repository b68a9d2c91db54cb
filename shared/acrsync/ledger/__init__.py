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

__all__ = [
    "OPEN_STATUSES", "Attempt", "ErrorInfo", "ImageRef", "Ledger", "LedgerError", "Origin", "Page", "Record",
    "RejectedEvent", "Report", "Status", "VersionConflict", "record_key",
]

"""Open the ledger the config names. Backends are imported lazily: SQLite users never pay tablestore's
import (~100 ms of cold start)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from acrsync.ledger.base import Ledger

if TYPE_CHECKING:
    from acrsync.cloud.clients import CloudSession
    from acrsync.config import LedgerConfig


def open_ledger(cfg: LedgerConfig, session: CloudSession | None = None) -> Ledger:
    """A ready ledger for ``cfg``: SQLite at ``cfg.path``, or Tablestore through ``session``.

    ``session`` is an ``acrsync.cloud.clients.CloudSession``: Tablestore calls go through it (refreshing
    credentials, the endpoint override ACRSYNC_ENDPOINT[_OTS], retries in its budget, ``session.calls``).
    Without one, Tablestore uses the default credential chain (``CloudSession.from_environment()``).
    ``ledger.scoped(budget)`` bounds one invocation's ledger calls by its deadline.
    """
    if cfg.backend == "sqlite":
        from acrsync.ledger.sqlite import SqliteLedger

        return SqliteLedger(cfg.path)
    if cfg.backend == "tablestore":
        from acrsync.ledger.tablestore import TablestoreLedger

        if session is None:
            from acrsync.cloud.clients import CloudSession

            session = CloudSession.from_environment()
        return TablestoreLedger.from_session(cfg, session)
    raise ValueError(f"ledger.backend {cfg.backend!r} is not known; use sqlite or tablestore")

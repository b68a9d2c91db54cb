"""The one root of acrsync's errors, so a caller (the CLI above all) catches them in one place.

Every error acrsync raises on purpose derives from ``AcrsyncError`` and carries a one-line ``fix``
where there is one. Anything else that escapes is a bug, and the CLI shows its trace only with --debug.
"""

from __future__ import annotations


class AcrsyncError(Exception):
    """Base of every error acrsync raises on purpose. ``fix`` says what the user can do, if anything."""

    fix: str | None = None

"""The compliance function's backfill entry, as its handler routes a ``{"backfill": ...}`` event."""

from acrsync.app import app_for


def handler(event, context):
    return app_for(context).handle_backfill(event, context)

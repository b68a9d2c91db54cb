"""FC entry point: the reconcile timer. Level-triggered; the work lives in ``acrsync.reconcile``."""

from acrsync.app import app_for


def handler(event, context):
    return app_for(context).handle_reconcile(event, context)

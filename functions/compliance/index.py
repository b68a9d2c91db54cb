"""FC entry point: the compliance timer. The work lives in ``acrsync.compliance``."""

from acrsync.app import app_for


def handler(event, context):
    return app_for(context).handle_compliance(event, context)

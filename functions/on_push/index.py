"""FC entry point: ACR pushes (EventBridge trigger) and ACR webhooks (HTTP trigger).

Parse, call acrsync, return: the decisions live in ``acrsync.push``.
"""

from acrsync.app import app_for


def handler(event, context):
    return app_for(context).handle_on_push(event, context)

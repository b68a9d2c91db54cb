"""Emulated Container Registry Enterprise Edition (API 2018-12-01): instances, repositories, tags, and the
sync rules and tasks that replicate images between instances and accounts.

``wire.ACTIONS`` serves the RPC actions, ``models`` holds the state and the documented replication rules,
``control`` is the ``/_localcloud/acr/<op>`` test and demo surface, ``events`` builds the CloudEvents.
"""

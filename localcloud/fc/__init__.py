"""Emulated Function Compute 3.0 (API 2023-03-30): the scenario's functions, run in a subprocess runtime
with their role's STS credentials, invoked over the API or by EventBridge triggers on localcloud's events.

``wire`` serves GetFunction and InvokeFunction, ``models`` holds the functions, invocations and trigger
matching, ``runtime`` runs one invocation, ``control`` is ``/_localcloud/fc/<op>``.
"""

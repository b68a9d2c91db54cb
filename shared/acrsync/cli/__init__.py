"""The ``acrsync`` command. Each sub-command group lives in its own module; this file only wires them.

Exit codes: 0 clean, 1 findings or failures, 2 usage or config errors.
"""

from __future__ import annotations

import typer

from acrsync.cli import check, emulator, grants, ledger, ops, permissions, report

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Keep ACR Enterprise Edition images replicated across Alibaba Cloud accounts. "
                       "Exit codes: 0 clean, 1 findings or failures, 2 usage or config errors.")
app.add_typer(ledger.app, name="ledger")
app.add_typer(grants.app, name="grants")
emulator.register(app)
permissions.register(app)
ops.register(app)
check.register(app)
app.add_typer(report.app, name="report")


def main() -> None:
    app()

"""`acrsync invoke` and `acrsync reconcile`: the functions' work, run from a shell.

The same code paths as in Function Compute (``acrsync.app``), with the CLI's credentials (the default
chain) and a local context object standing in for FC's.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import typer
from rich.console import Console

from acrsync.cli.common import load

FUNCTIONS = ("on_push", "reconcile")
TIMEOUTS = {"on_push": 120, "reconcile": 600}

err = Console(stderr=True)


def local_context(function: str, timeout: int | None = None) -> SimpleNamespace:
    """What FC passes as ``context``, minus credentials (the CLI session has its own)."""
    return SimpleNamespace(request_id=f"local-{uuid.uuid4()}", credentials=None, region=None,
                           function=SimpleNamespace(name=function, timeout=timeout or TIMEOUTS[function],
                                                    handler="index.handler", memory=512))


def _app(config_path: Path | None):
    from acrsync.app import App
    from acrsync.app import config_path as default_path

    found = config_path or default_path()
    return App.for_cli(load(Path(found) if found else None))


def register(app: typer.Typer) -> None:
    """Add `invoke` and `reconcile`."""

    @app.command()
    def invoke(function: str = typer.Argument(..., help="on_push or reconcile"),
               event: Path = typer.Option(..., "--event", "-e", exists=True, dir_okay=False,
                                          help="event file (see events/)"),
               config: Path | None = typer.Option(None, "--config", "-c", help="config file (else ACRSYNC_CONFIG)"),
               ) -> None:
        """Run a function's handler locally on an event file, as Function Compute would."""
        if function not in FUNCTIONS:
            err.print(f"[red]unknown function {function!r}; choose one of {', '.join(FUNCTIONS)}[/red]")
            raise typer.Exit(2)
        application = _app(config)
        payload = event.read_bytes()
        ctx = local_context(function)
        if function == "on_push":
            result = application.handle_on_push(payload, ctx)
        else:
            result = application.handle_reconcile(payload, ctx)
        typer.echo(json.dumps(result, indent=2, default=str))

    @app.command(name="reconcile")
    def reconcile_cmd(once: bool = typer.Option(False, "--once", help="one pass, then exit"),
                      dry_run: bool = typer.Option(False, "--dry-run", help="show what would change; change nothing"),
                      interval: float = typer.Option(600, "--interval", help="seconds between passes"),
                      config: Path | None = typer.Option(None, "--config", "-c",
                                                         help="config file (else ACRSYNC_CONFIG)")) -> None:
        """Reconcile the ledger with ACR: task status, retries, stuck tasks, rule-made tasks."""
        application = _app(config)
        while True:
            result = application.handle_reconcile(None, local_context("reconcile"), dry_run=dry_run)
            typer.echo(json.dumps(result, indent=2, default=str))
            if once or dry_run:
                return
            time.sleep(interval)

"""`acrsync invoke` and `acrsync reconcile`: the functions' work, run from a shell.

The same code paths as in Function Compute (``acrsync.app``), with the CLI's credentials (the default
chain) and a local context object standing in for FC's.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from pathlib import Path
from types import SimpleNamespace

import typer
from rich.console import Console

from acrsync.cli.common import load

FUNCTIONS = ("on_push", "reconcile", "compliance")
TIMEOUTS = {"on_push": 120, "reconcile": 600, "compliance": 900}
DEPLOYED_NAMES = {"on_push": "acrsync-on-push", "reconcile": "acrsync-reconcile",   # s.yaml functionName
                  "compliance": "acrsync-compliance"}

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


def _remote_region(region: str | None, config_path: Path | None) -> str:
    """--region, else the environment's region, else the config's source region (the functions run there)."""
    from acrsync.app import config_path as default_path

    found = region or os.environ.get("ALIBABA_CLOUD_REGION_ID") or os.environ.get("FC_REGION")
    if found:
        return found
    path = config_path or default_path()
    if path:
        return load(Path(path)).source.region
    err.print("[red]no region for the remote function: pass --region, set ALIBABA_CLOUD_REGION_ID, or give "
              "--config (its source region is used)[/red]")
    raise typer.Exit(2)


def _invoke_remote(function: str, payload: bytes, *, config: Path | None, async_: bool, name: str,
                   region: str | None) -> None:
    """InvokeFunction with the CLI's credentials; a function that raised exits 1 with FC's error."""
    from acrsync.cloud.clients import CloudSession, Timeouts
    from acrsync.cloud.errors import CloudError

    where = _remote_region(region, config)
    # A sync call waits for the function: read up to its timeout (plus a margin), never retried (not idempotent).
    session = CloudSession.from_environment(region=where, timeouts=Timeouts(read=TIMEOUTS[function] + 30.0))
    try:
        reply = session.fc(where).invoke_function(name, payload, async_=async_)
    except CloudError as e:
        if e.code.startswith("FunctionError."):
            err.print(f"[red]{name} failed ({e.code.removeprefix('FunctionError.')}), request id "
                      f"{e.request_id}:[/red]")
            typer.echo(_pretty(e.message.encode("utf-8")), err=True)
        else:
            err.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    if async_:
        typer.echo(json.dumps({"function": name, "region": where, "invocation": "Async", "status": "queued"}))
    else:
        typer.echo(_pretty(reply))


def _pretty(reply: bytes) -> str:
    """JSON replies indented, anything else as text."""
    text = reply.decode("utf-8", "replace")
    try:
        return json.dumps(json.loads(text), indent=2)
    except ValueError:
        return text


def register(app: typer.Typer) -> None:
    """Add `invoke` and `reconcile`."""

    @app.command()
    def invoke(function: str = typer.Argument(..., help="on_push, reconcile or compliance"),
               event: Path = typer.Option(..., "--event", "-e", exists=True, dir_okay=False,
                                          help="event file (see events/)"),
               config: Path | None = typer.Option(None, "--config", "-c", help="config file (else ACRSYNC_CONFIG)"),
               remote: bool = typer.Option(False, "--remote",
                                           help="invoke the deployed function through the FC 3.0 API instead"),
               async_: bool = typer.Option(False, "--async", help="with --remote: queue it (FC replies at once)"),
               function_name: str | None = typer.Option(None, "--function-name",
                                                        help="with --remote: the FC function (default: s.yaml's)"),
               region: str | None = typer.Option(None, "--region",
                                                 help="with --remote: the function's region (default: "
                                                      "ALIBABA_CLOUD_REGION_ID, else the config's source region)"),
               ) -> None:
        """Run a function's handler locally on an event file, as Function Compute would, or (--remote)
        invoke the deployed function with it."""
        if function not in FUNCTIONS:
            err.print(f"[red]unknown function {function!r}; choose one of {', '.join(FUNCTIONS)}[/red]")
            raise typer.Exit(2)
        payload = event.read_bytes()
        if remote:
            _invoke_remote(function, payload, config=config, async_=async_,
                           name=function_name or DEPLOYED_NAMES[function], region=region)
            return
        if async_ or function_name or region:
            err.print("[red]--async, --function-name and --region only apply with --remote[/red]")
            raise typer.Exit(2)
        application = _app(config)
        ctx = local_context(function)
        if function == "on_push":
            result = application.handle_on_push(payload, ctx)
        elif function == "compliance":
            result = application.handle_compliance(payload, ctx)
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

"""The ``acrsync`` command. Each sub-command group lives in its own module; this file only wires them,
and catches every error in one place (``run``): one line for the user, the trace only with --debug.

Exit codes: 0 clean, 1 findings or failures, 2 usage or config errors.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

import typer

from acrsync.cli import backfill, check, emulator, grants, ledger, ops, permissions, rules
from acrsync.cli import report as report_cli
from acrsync.cli.common import EXIT_USAGE, report

if TYPE_CHECKING:
    from typer._click import Command  # typer vendors click: what typer.main.get_command returns

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  pretty_exceptions_enable=False, context_settings={"help_option_names": ["-h", "--help"]},
                  help="Keep ACR Enterprise Edition images replicated across Alibaba Cloud accounts. "
                       "Exit codes: 0 clean, 1 findings or failures, 2 usage or config errors.")
app.add_typer(ledger.app, name="ledger")
app.add_typer(grants.app, name="grants")
app.add_typer(backfill.app, name="backfill")
app.add_typer(rules.app, name="rules")
emulator.register(app)
permissions.register(app)
ops.register(app)
check.register(app)
app.add_typer(report_cli.app, name="report")

_debug = False


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            typer.echo(f"acrsync {version('acrsync')}")
        except PackageNotFoundError:
            typer.echo("acrsync (not installed as a package)")
        raise typer.Exit(0)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="show the full trace of an error "
                                                                "(also: ACRSYNC_DEBUG=1)"),
          version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="print the version and exit")) -> None:
    global _debug
    _debug = debug or _debug


def _debug_wanted(argv: Sequence[str]) -> bool:
    return _debug or "--debug" in argv or os.environ.get("ACRSYNC_DEBUG", "").lower() in ("1", "true", "yes")


def _tidy(command: Command) -> None:
    """Help with plain names: ``--event FILE`` and ``FUNCTION``, no ``<bool>``/``<str>``/``{name}`` marks."""
    for param in getattr(command, "params", []):
        name = (param.name or "value").upper()
        if getattr(param, "param_type_name", "") == "argument":
            shown = name if param.required else f"[{name}]"
            param.get_usage_pieces = lambda ctx, shown=shown: [shown]
            param.display_type_rich = lambda ctx: None
            param.metavar = param.metavar or name
        elif not getattr(param, "is_flag", False) and param.metavar is None:
            desc = getattr(param, "type_descriptor", None)
            choices = list(desc.choices or ()) if desc is not None and desc.is_choice else None
            param.metavar = "|".join(str(getattr(c, "value", c)) for c in choices) \
                if choices and len(choices) <= 4 else name
    for sub in getattr(command, "commands", {}).values():
        _tidy(sub)


def command() -> Command:
    """The click command behind ``app``, with the help tidied (built once per process)."""
    cmd = typer.main.get_command(app)
    _tidy(cmd)
    return cmd


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return its exit code; errors become one line (the trace with --debug)."""
    args = list(sys.argv[1:] if argv is None else argv)
    global _debug
    _debug = False
    try:
        command().main(args=args, prog_name="acrsync", standalone_mode=True)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else EXIT_USAGE)
    except KeyboardInterrupt:
        typer.echo("acrsync: interrupted", err=True)
        return 130
    except Exception as e:     # every error ends here: one line, never a trace unless asked for
        return report(e, debug=_debug_wanted(args))
    return 0


def main() -> None:
    sys.exit(run())

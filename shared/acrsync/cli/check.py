"""`acrsync check`: the scheduled compliance run, from a shell (the same code as the compliance function).

Exit codes: 0 compliant, 1 findings (or a cloud/ledger failure), 2 usage or config errors.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from enum import Enum
from pathlib import Path

import typer

from acrsync.cli.common import ConfigOpt
from acrsync.cli.common import load as _config


class ReportFormat(str, Enum):
    table = "table"
    json = "json"
    md = "md"
    html = "html"


def emit(text: str, out: Path | None) -> None:
    """The report on stdout, or into ``out`` (its path said on stderr)."""
    if out is None:
        typer.echo(text, nl=not text.endswith("\n"))
        return
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    except OSError as e:
        typer.echo(f"--out: cannot write {out}: {e.strerror}", err=True)
        raise typer.Exit(2) from None
    typer.echo(f"report written to {out}", err=True)


@contextmanager
def _progress() -> Iterator[Callable[[int, int], None]]:
    """'checked N/M repositories' on stderr when it is a terminal; silent otherwise."""
    if not sys.stderr.isatty():
        yield lambda done, total: None
        return
    last = [0.0]

    def show(done: int, total: int) -> None:
        import time

        now = time.monotonic()
        if now - last[0] >= 0.2 or done == total:
            last[0] = now
            sys.stderr.write(f"\rchecked {done}/{total} repositories")
            sys.stderr.flush()

    try:
        yield show
    finally:
        sys.stderr.write("\n")


def register(app: typer.Typer) -> None:
    @app.command()
    def check(target: str | None = typer.Option(None, "--target", "-t", help="check this target only"),
              output: ReportFormat = typer.Option(ReportFormat.table, "--output", "-o",
                                                  help="table, json, md or html"),
              out: Path | None = typer.Option(None, "--out", help="write the report to this file"),
              remediate: bool = typer.Option(False, "--remediate",
                                             help="create sync tasks for missing tags (bounded by "
                                                  "compliance.max_tasks_per_run)"),
              config: Path | None = ConfigOpt) -> None:
        """Prove every in-scope image is on every target: grants, coverage, drift, event delivery and the
        deployed functions; say why not; with --remediate, create the missing sync tasks. The report is
        stored in the ledger (`acrsync report show latest`)."""
        from acrsync.app import App
        from acrsync.compliance import entry, render
        from acrsync.compliance.run import Options
        from acrsync.errors import AcrsyncError

        cfg = _config(config)
        if target is not None and target not in {t.name for t in cfg.targets}:
            typer.echo(f"--target: no target named {target!r}; configured: "
                       f"{', '.join(t.name for t in cfg.targets)}", err=True)
            raise typer.Exit(2)
        try:
            application = App.for_cli(cfg)
            with _progress() as show:
                report, _ = entry.check(application, Options(
                    targets=[target] if target else None, remediate=remediate or cfg.compliance.remediate,
                    trigger="cli", progress=show))
        except AcrsyncError as e:
            typer.echo(f"the check could not run: {e}", err=True)
            raise typer.Exit(1) from None
        emit(render.FORMATS[output.value](report), out)
        raise typer.Exit(0 if report.verdict == "compliant" else 1)

"""acrsync emulator command(s): run localcloud, the local emulator of the Alibaba Cloud APIs acrsync calls."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""

    @app.command("emulator")
    def emulator(
        scenario: Path = typer.Option(..., "--scenario", exists=True, dir_okay=False, readable=True,
                                      help="Scenario YAML (accounts, roles, instances), e.g. scenarios/demo.yaml"),
        port: int = typer.Option(0, "--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free port)"),
        clock: str = typer.Option("wall", "--clock", help="wall (real time) or manual (moves only when told)"),
        ots_state_file: Path = typer.Option(None, "--ots-state-file",
                                            help="Keep Tablestore tables in this file across restarts"),
    ) -> None:
        """Serve localcloud on 127.0.0.1 until Ctrl-C/SIGTERM. Point clients at it with
        ACRSYNC_ENDPOINT=http://127.0.0.1:PORT. It has no real security: never expose it beyond 127.0.0.1."""
        # The only place acrsync imports localcloud: the emulator is a development tool, never deployed.
        from localcloud.scenario import ScenarioError
        from localcloud.server import serve_forever

        if clock not in ("wall", "manual"):
            typer.echo(f"--clock must be wall or manual, not {clock!r}", err=True)
            raise typer.Exit(2)
        try:
            code = serve_forever(scenario, port=port, clock=clock,
                                 ots_state_file=str(ots_state_file) if ots_state_file else None)
        except ScenarioError as exc:
            typer.echo(f"acrsync emulator: {exc}", err=True)
            raise typer.Exit(2) from None
        except OSError as exc:
            typer.echo(f"acrsync emulator: cannot listen on 127.0.0.1:{port}: {exc}", err=True)
            raise typer.Exit(2) from None
        raise typer.Exit(code)

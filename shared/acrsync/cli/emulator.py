"""acrsync emulator command(s): run localcloud, the local emulator of the Alibaba Cloud APIs acrsync calls."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import typer
import yaml


def with_config(scenario: Path, config: Path) -> Path:
    """A copy of ``scenario`` whose functions read ``config`` (ACRSYNC_CONFIG, absolute): the emulated
    functions then run with the same config as the CLI, whatever the scenario's own default points at."""
    doc = yaml.safe_load(scenario.read_text()) or {}
    for fn in doc.get("functions") or []:
        fn.setdefault("environment", {})["ACRSYNC_CONFIG"] = str(config.resolve())
    fd, name = tempfile.mkstemp(prefix="localcloud-", suffix=".yaml")
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(doc, f, sort_keys=False)
    return Path(name)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""

    @app.command("emulator")
    def emulator(
        scenario: Path = typer.Option(
            ...,
            "--scenario",
            exists=True,
            dir_okay=False,
            readable=True,
            help="Scenario YAML (accounts, roles, instances), e.g. scenarios/demo.yaml",
        ),
        port: int = typer.Option(0, "--port", min=0, max=65535, help="Port on 127.0.0.1 (0: any free port)"),
        clock: str = typer.Option(
            "wall", "--clock", help="wall (real time) or manual (moves only when told)"
        ),
        ots_state_file: Path = typer.Option(
            None, "--ots-state-file", help="Keep Tablestore tables in this file across restarts"
        ),
        config: Path = typer.Option(
            None,
            "--config",
            "-c",
            exists=True,
            dir_okay=False,
            help="the config the emulated functions use (default: $ACRSYNC_CONFIG, else the scenario's own)",
        ),
    ) -> None:
        """Serve localcloud on 127.0.0.1 until Ctrl-C/SIGTERM. Point clients at it with
        ACRSYNC_ENDPOINT=http://127.0.0.1:PORT. It has no real security: never expose it beyond 127.0.0.1."""
        # The only place acrsync imports localcloud: the emulator is a development tool, never deployed.
        from localcloud.scenario import ScenarioError
        from localcloud.server import serve_forever

        if clock not in ("wall", "manual"):
            typer.echo(f"--clock must be wall or manual, not {clock!r}", err=True)
            raise typer.Exit(2)
        given = config or (Path(os.environ["ACRSYNC_CONFIG"]) if os.environ.get("ACRSYNC_CONFIG") else None)
        if given is not None and not given.is_file():
            typer.echo(f"ACRSYNC_CONFIG: {given} does not exist; pass --config FILE", err=True)
            raise typer.Exit(2)
        served = with_config(scenario, given) if given is not None else scenario
        try:
            code = serve_forever(served, port=port, clock=clock,
                                 ots_state_file=str(ots_state_file) if ots_state_file else None)
        except ScenarioError as exc:
            typer.echo(f"acrsync emulator: {exc}", err=True)
            raise typer.Exit(2) from None
        except OSError as exc:
            typer.echo(f"acrsync emulator: cannot listen on 127.0.0.1:{port}: {exc}", err=True)
            raise typer.Exit(2) from None
        finally:
            if served != scenario:
                served.unlink(missing_ok=True)
        raise typer.Exit(code)

"""What every `acrsync` command shares: the --config and --output options and config loading.

A config error prints its problems (each names the field and the fix) and exits 2.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from acrsync.config import Config, ConfigError, load_config, with_env_overrides


class Output(str, Enum):
    table = "table"
    json = "json"


ConfigOpt = typer.Option(None, "--config", "-c", help="replication config (default: $ACRSYNC_CONFIG)")
OutputOpt = typer.Option(Output.table, "--output", "-o", help="table or json")


def load(path: Path | None) -> Config:
    """The config from ``path`` or ACRSYNC_CONFIG, with the environment's overrides; exit 2 if invalid."""
    try:
        return with_env_overrides(load_config(path))
    except ConfigError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(2) from None

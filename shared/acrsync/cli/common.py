"""What every `acrsync` command shares: --config, --output, the cloud flags, config loading, and how an
error reaches the user (one line: what failed, why, the fix; the trace only with --debug).

A config error prints its problems (each names the field and the fix) and exits 2.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from acrsync.config import Config, ConfigError, load_config, with_env_overrides
from acrsync.errors import AcrsyncError
from acrsync.value import Frozen

if TYPE_CHECKING:
    from acrsync.cloud.clients import CloudSession

EXIT_CLEAN, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class Output(str, Enum):
    table = "table"
    json = "json"


def output_opt(default: Output = Output.table) -> Any:
    """``--output/-o table|json``: the same spelling, and any case, on every command that prints results."""
    return typer.Option(default, "--output", "-o", case_sensitive=False, help="table or json")


ConfigOpt = typer.Option(None, "--config", "-c", help="replication config (default: $ACRSYNC_CONFIG)")
OutputOpt = output_opt()
ProfileOpt = typer.Option(None, "--profile",
                          help="aliyun CLI profile to sign with (default: ALIBABA_CLOUD_* keys, else the "
                               "default credential chain)")
RegionOpt = typer.Option(None, "--region", help="region id, as ALIBABA_CLOUD_REGION_ID sets it")
EndpointOpt = typer.Option(None, "--endpoint",
                           help="one endpoint for every service, e.g. http://127.0.0.1:8765 (localcloud), "
                                "as ACRSYNC_ENDPOINT sets it")


def load(path: Path | None) -> Config:
    """The config from ``path`` or ACRSYNC_CONFIG, with the environment's overrides; exit 2 if invalid."""
    try:
        return with_env_overrides(load_config(path))
    except ConfigError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(EXIT_USAGE) from None


@dataclass(frozen=True, repr=False, eq=False)
class CloudFlags(Frozen):
    """--profile, --region and --endpoint of one command: they mean what the environment variables mean."""

    profile: str | None = None
    region: str | None = None
    endpoint: str | None = None

    def apply(self) -> CloudFlags:
        """Set the environment the flags mirror, so every client (and the ledger) built later sees them."""
        from acrsync.cloud.clients import split_endpoint

        if self.endpoint:
            try:
                split_endpoint(self.endpoint)
            except ValueError as e:
                typer.echo(f"--endpoint: {e}", err=True)
                raise typer.Exit(EXIT_USAGE) from None
            os.environ["ACRSYNC_ENDPOINT"] = self.endpoint
        if self.region:
            os.environ["ALIBABA_CLOUD_REGION_ID"] = self.region
        return self

    def session(self, *, region: str | None = None, **kw: Any) -> CloudSession:
        """A CloudSession signing with --profile's keys, else ALIBABA_CLOUD_* keys or the default chain."""
        from acrsync.cloud.clients import CloudSession, Endpoints
        from acrsync.cloud.credentials import ProfileCredentials

        where = self.region or region
        if self.profile:
            return CloudSession(ProfileCredentials(self.profile), region=where,
                                endpoints=Endpoints.from_env(os.environ), **kw)
        return CloudSession.from_environment(region=where, **kw)


def cloud_flags(profile: str | None, region: str | None, endpoint: str | None) -> CloudFlags:
    return CloudFlags(profile, region, endpoint).apply()


# ---- errors --------------------------------------------------------------------------------------

def exit_code(err: BaseException) -> int:
    """2 for what the user must fix in the config, the keys or the command line; 1 for everything else."""
    from acrsync.cloud.errors import is_credentials_problem

    if isinstance(err, ConfigError) or is_credentials_problem(err):
        return EXIT_USAGE
    return EXIT_FINDINGS


def one_line(err: BaseException) -> str:
    """What failed, why, and the fix, for a person; never a trace."""
    from acrsync.cloud.errors import CredentialsInvalid, NoCredentials, Unreachable

    if isinstance(err, Unreachable):
        where = err.endpoint or "the endpoint"
        return (f"cannot reach {where} ({err.service}:{err.action}): nothing answered (connection refused "
                "or no such host). Fix: check --endpoint / ACRSYNC_ENDPOINT, --region and the network")
    if isinstance(err, CredentialsInvalid):
        key = err.access_key_id or os.environ.get("ALIBABA_CLOUD_ACCESS_KEY_ID") or "the configured key"
        return (f"{err.service}:{err.action} refused the access key {key} ({err.code}: {err.message}). Fix: "
                "use a valid AccessKey pair of a RAM user (ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET or --profile)")
    if isinstance(err, NoCredentials):
        return err.message
    if isinstance(err, ConfigError):
        return str(err)
    text = " ".join(str(err).split()) or type(err).__name__
    fix = getattr(err, "fix", None)
    return f"{text}. Fix: {fix}" if fix else text


def report(err: BaseException, *, debug: bool) -> int:
    """Print ``err`` for a user (with its trace under --debug) and return the exit code it means."""
    import traceback

    if debug:
        traceback.print_exception(type(err), err, err.__traceback__)
    if isinstance(err, AcrsyncError):
        typer.echo(f"acrsync: {one_line(err)}", err=True)
        return exit_code(err)
    typer.echo(f"acrsync: unexpected error: {type(err).__name__}: {' '.join(str(err).split())[:300]}"
               + ("" if debug else " (run with --debug, or ACRSYNC_DEBUG=1, for the trace)"), err=True)
    return EXIT_FINDINGS

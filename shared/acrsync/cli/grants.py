"""`acrsync grants print | verify | apply`: the cross-account grant in account B, checked before it fails.

Exit codes: 0 clean (warnings allowed) or done, 1 error findings or a failed cloud call, 2 usage or config
errors (including apply run with credentials of the wrong account).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from acrsync import codec
from acrsync import policy as P
from acrsync.cli.common import (
    EXIT_USAGE,
    ConfigOpt,
    EndpointOpt,
    Output,
    OutputOpt,
    ProfileOpt,
    RegionOpt,
    cloud_flags,
)
from acrsync.cli.common import load as _config
from acrsync.config import Config, Target
from acrsync.grants import Finding, execute, fixes, has_errors, plan, session_checker
from acrsync.grants.findings import Fix

if TYPE_CHECKING:
    from acrsync.cloud.clients import CloudSession

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  help="check and set up the RAM grant ACR needs in each target account")



def _targets(cfg: Config, name: str | None) -> list[Target]:
    if name is None:
        return [t for t in cfg.targets if t.enabled]
    try:
        return [cfg.target(name)]
    except KeyError as e:
        typer.echo(f"--target: {e.args[0]}", err=True)
        raise typer.Exit(2) from None


# ---- print ---------------------------------------------------------------------------------------

@app.command("print")
def print_(target: str = typer.Option(..., "--target", "-t", help="target name from the config"),
           output: Output = OutputOpt, config: Path | None = ConfigOpt) -> None:
    """Print the role, policy and trust policy to create in the target account, and the commands."""
    cfg = _config(config)
    t = _targets(cfg, target)[0]
    doc: dict[str, Any] = {"target": t.name, "account_id": t.account_id, "role_name": P.SYNC_ROLE_NAME,
           "policy_name": fixes.sync_policy_name(t), "policy": fixes.sync_policy(t),
           "trust_policy": fixes.trust_policy(cfg.source), "commands": fixes.setup_commands(cfg.source, t)}
    if output is Output.json:
        typer.echo(json.dumps(doc, indent=2))
        return
    typer.echo(f"# In account {t.account_id} (target {t.name}), as its administrator:\n")
    typer.echo(f"Role name (exactly, 'accout' is what ACR looks up): {P.SYNC_ROLE_NAME}\n")
    typer.echo(f"Policy {doc['policy_name']} (attach to the role):")
    typer.echo(fixes.pretty(doc["policy"]) + "\n")
    typer.echo("Trust policy of the role:")
    typer.echo(fixes.pretty(doc["trust_policy"]) + "\n")
    typer.echo("With the aliyun CLI:")
    for c in doc["commands"]:
        typer.echo(c)


# ---- verify --------------------------------------------------------------------------------------

def _render(findings: list[Finding]) -> str:
    lines = []
    for f in findings:
        lines.append(f"[{f.severity}] {f.code}  target={f.target}")
        lines.append(f"    {f.message}")
        for e in f.evidence:
            at = f" statement {e.statement}" if e.statement is not None else ""
            detail = _compact(e.detail)
            detail = f": {detail}" if detail and len(detail) <= 400 else ""
            lines.append(f"    evidence: {e.source}{at}{detail}")
        if f.fix is not None:
            lines.append(
                f"    fix: {f.fix.summary}"
                + (" (`acrsync grants apply` does this)" if f.fix.automatic else "")
            )
            if f.fix.policy_json and f.code != "TRUST_MISSING_PRINCIPAL":
                lines.append("    policy:\n" + _indent(f.fix.policy_json, 6))
            if f.fix.trust_json:
                lines.append("    trust policy:\n" + _indent(f.fix.trust_json, 6))
            for c in f.fix.commands:
                lines.append(f"      $ {c}")
        lines.append("")
    return "\n".join(lines)


def _compact(text: str) -> str:
    """A JSON document on one line; other text as it is."""
    try:
        return json.dumps(json.loads(text), separators=(",", ":"), ensure_ascii=False)
    except ValueError:
        return text


def _indent(text: str, n: int) -> str:
    return "\n".join(" " * n + line for line in text.splitlines())


def _preflight(session: CloudSession, cfg: Config) -> tuple[Finding, int] | None:
    """One GetCallerIdentity first: an unreachable cloud or refused keys is one finding, not a cascade."""
    from acrsync.cloud.probe import Problem, probe

    found = probe(session, cfg.source.region, expected_account=cfg.source.account_id)
    if found.ok:
        return None
    assert found.problem is not None, "a failed probe names its problem"
    # Not a finding about a target (grants.CODES): the check never started, so it is built here.
    f = Finding(code=found.problem.value, severity="error", target="all targets",
                message=f"{found.message}; no check ran", fix=Fix(summary=found.fix))
    return f, (EXIT_USAGE if found.problem is Problem.CREDENTIALS_INVALID else 1)


@app.command()
def verify(
    target: str | None = typer.Option(None, "--target", "-t", help="one target (default: all enabled)"),
    output: Output = OutputOpt,
    config: Path | None = ConfigOpt,
    profile: str | None = ProfileOpt,
    region: str | None = RegionOpt,
    endpoint: str | None = EndpointOpt,
) -> None:
    """Check grants and prerequisites of each target; exit 1 when an error finding is found (2 when the
    keys are missing or refused)."""
    flags = cloud_flags(profile, region, endpoint)
    cfg = _config(config)
    targets = _targets(cfg, target)
    session = flags.session(region=cfg.source.region)
    stop = _preflight(session, cfg)
    if stop is not None:
        f, code = stop
        if output is Output.json:
            typer.echo(json.dumps({"clean": False, "targets": {t.name: [codec.dump(f)]
                                                               for t in targets}}, indent=2))
        else:
            typer.echo(f"== every target: not checked\n{_render([f])}")
        raise typer.Exit(code)
    check = session_checker(session, cfg)
    results: dict[str, list[Finding]] = {t.name: check(t) for t in targets}
    everything = [f for fs in results.values() for f in fs]
    if output is Output.json:
        typer.echo(json.dumps({"clean": not has_errors(everything),
                               "targets": {n: [codec.dump(f) for f in fs]
                                           for n, fs in results.items()}}, indent=2))
    else:
        for name, fs in results.items():
            errors = sum(f.severity == "error" for f in fs)
            warnings = sum(f.severity == "warning" for f in fs)
            state = "BLOCKED" if errors else "clean"
            typer.echo(f"== target {name}: {state} ({errors} error(s), {warnings} warning(s))")
            if fs:
                typer.echo(_render(fs))
    raise typer.Exit(1 if has_errors(everything) else 0)


# ---- apply ---------------------------------------------------------------------------------------

@app.command()
def apply(
    target: str = typer.Option(..., "--target", "-t", help="target name from the config"),
    yes: bool = typer.Option(False, "--yes", "-y", help="make the changes (default: print the plan only)"),
    detach_conflicting: bool = typer.Option(
        False,
        "--detach-conflicting",
        help=f"detach policies whose Deny blocks ACR's sync from {P.SYNC_ROLE_NAME} (the policies are kept)",
    ),
    output: Output = OutputOpt,
    config: Path | None = ConfigOpt,
    profile: str | None = typer.Option(
        None,
        "--profile",
        help="aliyun CLI profile of account B's administrator "
        "(default: ALIBABA_CLOUD_* keys or the default chain)",
    ),
    region: str | None = RegionOpt,
    endpoint: str | None = EndpointOpt,
) -> None:
    """Set up the sync role, the reader role and the target namespaces in the target account (idempotent)."""
    from acrsync.cloud.errors import CloudError, is_credentials_problem

    flags = cloud_flags(profile, region, endpoint)
    cfg = _config(config)
    t = _targets(cfg, target)[0]
    session = flags.session(region=t.region)
    try:
        me = session.sts().get_caller_identity()
        if me.account_id != t.account_id:
            typer.echo(
                f"these credentials belong to account {me.account_id} ({me.arn}), but target {t.name} is "
                f"account {t.account_id}: run apply as account {t.account_id}'s administrator "
                "(--profile or ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET of that account)",
                err=True,
            )
            raise typer.Exit(2)
        ram, acr = session.ram(), session.acr(t.region)
        the_plan = plan(cfg, t, ram, acr, detach_conflicting=detach_conflicting)
        done = execute(the_plan, ram, acr) if yes else []
    except CloudError as e:
        if is_credentials_problem(e):
            raise
        typer.echo(f"apply failed: {e}", err=True)
        raise typer.Exit(1) from None
    if output is Output.json:
        out: dict[str, Any] = the_plan.model_dump(mode="json")
        out.update(applied=yes, done=done)
        typer.echo(json.dumps(out, indent=2))
        return
    if the_plan.empty:
        typer.echo(f"target {t.name}: nothing to change in account {t.account_id}")
    else:
        verb = "done" if yes else "planned (run again with --yes to make these changes)"
        typer.echo(f"target {t.name}: {len(the_plan.steps)} change(s) {verb}:")
        for st in the_plan.steps:
            fixed = f" (fixes {', '.join(st.fixes)})" if st.fixes else ""
            typer.echo(f"  - {st.kind} {st.changes}{fixed}: {st.why}")
            if not yes:                 # the commands that would do it by hand; once done, they are history
                typer.echo(f"      $ {st.command}")
    for n in the_plan.notes:
        typer.echo(f"  note: {n}")

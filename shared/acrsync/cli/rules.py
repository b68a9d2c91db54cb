"""`acrsync rules plan | apply`: hand a target's future pushes to native sync rules (the rule advisor).

plan prints the proposed rules, what keeps them from more repositories, and the backfill that remains
(rules never copy existing images). apply --yes creates the missing ones (CreateRepoSyncRule); it is
idempotent and never deletes a rule. Exit codes: 0 planned or applied, 1 blocked or a failed call,
2 usage or config errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.table import Table

from acrsync.cli.backfill import _app, _target
from acrsync.cli.common import ConfigOpt, Output, OutputOpt

if TYPE_CHECKING:
    from acrsync.app import App
    from acrsync.config import Target
    from acrsync.model import SyncRule
    from acrsync.rule_advisor import RulePlan

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="propose and create native sync rules that take over future pushes")
err = Console(stderr=True)


def _plan(a: App, t: Target, *, with_backfill: bool = True) -> tuple[RulePlan, list[SyncRule]]:
    from acrsync.backfill import Job
    from acrsync.backfill.local import for_app
    from acrsync.rule_advisor import advise

    bf = for_app(a, t)
    src = a.config.source.instance_id
    acr = bf.d.acr
    tacr = bf.target_acr
    source_repos = list(acr.list_repositories(src))
    rules = acr.list_repo_sync_rules(src)
    namespaces = {n.name: n for n in tacr.list_namespaces(t.instance_id)}
    target_repos = {r.path: r for r in tacr.list_repositories(t.instance_id)}
    plan = advise(a.config, t, source_repos=source_repos, rules=rules, target_namespaces=namespaces,
                  target_repos=target_repos, grant_finding=bf.grants_finding())
    if with_backfill and plan.blocked_by is None:
        plan.backfill_remaining = bf.plan(Job(run_id="rules-plan", target=t.name)).to_create
    return plan, rules


def _show(plan: RulePlan, output: Output) -> None:
    if output is Output.json:
        typer.echo(json.dumps(plan.to_dict(), sort_keys=True))
        return
    out = Console()
    if plan.blocked_by:
        out.print(f"[red]no rule proposed: the grants of target {plan.target} are blocked by "
                  f"{plan.blocked_by.get('code')}: {plan.blocked_by.get('message', '')}[/red]")
        return
    table = Table(title=f"sync rules proposed for target {plan.target}")
    for col in ("name", "scope", "source", "repo filter", "tag filter", "target", "takes over"):
        table.add_column(col)
    for p in plan.proposals:
        src = p.namespace + (f"/{p.repo}" if p.repo else "")
        dst = p.target_namespace + (f"/{p.target_repo}" if p.target_repo else "")
        table.add_row(
            p.name, p.scope, src, p.repo_filter or "(all)", p.tag_filter, dst, str(len(p.repositories))
        )
    out.print(table)
    for u in plan.unmet:
        out.print(f"[yellow]not proposed: {u.what}: {u.reason}; fix: {u.fix}[/yellow]")
    if plan.already_covered:
        out.print(f"already covered by existing rules: {', '.join(plan.already_covered)}")
    out.print(f"rules on the source instance: {plan.rules_now} (limit {plan.rule_limit}, "
              "rules.max_rules_per_instance: no public number)")
    out.print(
        "note: sync rules replicate only images pushed after they exist; "
        + (
            f"{plan.backfill_remaining} existing image(s) still need `acrsync backfill --target "
            f"{plan.target}`"
            if plan.backfill_remaining is not None
            else "run acrsync backfill for the rest"
        )
    )


@app.command("plan")
def plan_cmd(target: str = typer.Option(None, "--target", "-t", help="target name from the config"),
             output: Output = OutputOpt, config: Path | None = ConfigOpt) -> None:
    """Propose the smallest set of sync rules for the target, checked against their prerequisites."""
    from acrsync.cloud.errors import CloudError

    a = _app(config)
    t = _target(a.config, target)
    try:
        plan, _ = _plan(a, t)
    except CloudError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    _show(plan, output)
    raise typer.Exit(1 if plan.blocked_by else 0)


@app.command("apply")
def apply_cmd(target: str = typer.Option(None, "--target", "-t", help="target name from the config"),
              yes: bool = typer.Option(False, "--yes", "-y", help="create the rules (without it: only plan)"),
              output: Output = OutputOpt, config: Path | None = ConfigOpt) -> None:
    """Create the proposed rules that do not exist yet (idempotent; never deletes a rule)."""
    from acrsync.cloud.errors import CloudError
    from acrsync.rule_advisor import pending

    a = _app(config)
    t = _target(a.config, target)
    try:
        plan, rules = _plan(a, t, with_backfill=False)
    except CloudError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(1) from None
    if plan.blocked_by:
        _show(plan, output)
        raise typer.Exit(1)
    todo = pending(plan, rules)
    if not yes:
        _show(plan, output)
        err.print(f"{len(todo)} rule(s) to create; nothing was changed: run again with --yes")
        raise typer.Exit(0)
    acr = a.session.acr(a.config.source.region)
    created: list[dict[str, Any]] = []
    for p in todo:
        try:
            rule_id = acr.create_repo_sync_rule(
                a.config.source.instance_id, name=p.name, scope=p.scope, tag_filter=p.tag_filter,
                target_region=p.target_region, target_instance_id=p.target_instance_id, namespace=p.namespace,
                repo=p.repo, repo_filter=p.repo_filter, target_namespace=p.target_namespace,
                target_repo=p.target_repo, target_user_id=p.target_user_id, trigger="PASSIVE")
        except CloudError as e:
            err.print(f"[red]CreateRepoSyncRule {p.name} failed: {e}[/red]")
            _report(created, plan, output)
            raise typer.Exit(1) from None
        created.append({"name": p.name, "rule_id": rule_id, "scope": p.scope,
                        "repositories": list(p.repositories)})
    _report(created, plan, output)


def _report(created: list[dict[str, Any]], plan: RulePlan, output: Output) -> None:
    covered = plan.already_covered
    if output is Output.json:
        typer.echo(json.dumps({"created": created, "already_covered": covered}, sort_keys=True))
        return
    for c in created:
        typer.echo(
            f"created {c['scope']} rule {c['name']} ({c['rule_id']}) for {', '.join(c['repositories'])}"
        )
    typer.echo(f"{len(created)} rule(s) created; {len(covered)} repositories were already covered by rules; "
               "on_push counts covered repositories (after rules_cache_ttl_seconds)")

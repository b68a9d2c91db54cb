"""`acrsync permissions`: the minimal RAM policies each principal needs, from the declarations in
acrsync.cloud.permissions, the resources named in the config and the names s.yaml deploys.

With ``--out-dir`` every document is written as its own file (a valid RAM policy document, ready for
``aliyun ram CreatePolicy --PolicyDocument "$(cat FILE)"``), and the aliyun CLI commands that apply them are
printed; docs/DEPLOY.md uses them.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import typer

from acrsync.cli.common import Output, OutputOpt, load
from acrsync.cloud.permissions import (
    DeploySettings,
    PolicyDocument,
    Principal,
    known_ram_actions,
    policy_documents,
    trust_policy,
    unverified_static_actions,
)

TRUST_FILE = "function-trust.json"


def _unverified() -> set[str]:
    return {a for a, ok in known_ram_actions().items() if not ok} | unverified_static_actions()


def _text(docs: list[PolicyDocument], principal: Principal) -> str:
    if not docs:
        return (f"# {principal.value}: nothing to grant with this config "
                "(the reader role needs targets[].reader_role_arn)\n")
    unverified = _unverified()
    lines = []
    for d in docs:
        title = f"# {principal.value}" + (f" for target {d.target}" if d.target else "")
        lines.append(f"{title}: attach to {d.attach_to} (account {d.account_id})")
        used = sorted({a for s in d.document["Statement"] for a in s["Action"]} & unverified)
        if used:
            lines.append("# action names not confirmed in the docs (check in the RAM console): "
                         + ", ".join(used))
        lines.append(json.dumps(d.document, indent=2))
        lines.append("")
    if principal is Principal.FUNCTION:
        lines += [f"# {principal.value}: the role's trust policy (Function Compute assumes it)",
                  json.dumps(trust_policy(), indent=2), ""]
    return "\n".join(lines)


def file_name(doc: PolicyDocument) -> str:
    return f"{doc.principal.value}{'-' + doc.target if doc.target else ''}.json"


def policy_name(doc: PolicyDocument) -> str:
    return f"acrsync-{doc.principal.value}{'-' + doc.target if doc.target else ''}"


def apply_commands(doc: PolicyDocument, path: Path, settings: DeploySettings) -> list[str]:
    """The aliyun CLI commands that create the policy and attach it (run them with that account's admin)."""
    name = policy_name(doc)
    create = (f"aliyun ram CreatePolicy --PolicyName {name} --PolicyDocument \"$(cat {path})\" "
              f"--Description 'acrsync {doc.principal.value}'")
    if doc.principal is Principal.FUNCTION:
        role = settings.function_role
        return [f"aliyun ram CreateRole --RoleName {role} --AssumeRolePolicyDocument "
                f"\"$(cat {path.parent / TRUST_FILE})\" --Description 'acrsync functions'", create,
                f"aliyun ram AttachPolicyToRole --PolicyType Custom --PolicyName {name} --RoleName {role}"]
    if doc.principal is Principal.READER:
        found = re.search(r":role/([^\s)]+)", doc.attach_to)
        assert found is not None, "a reader policy is attached to a role"
        role = found.group(1)
        return [
            create,
            f"aliyun ram AttachPolicyToRole --PolicyType Custom --PolicyName {name} --RoleName {role}",
        ]
    return [
        create,
        f"aliyun ram AttachPolicyToUser --PolicyType Custom --PolicyName {name} --UserName <ram user>",
    ]


def write_documents(docs: list[PolicyDocument], out_dir: Path, settings: DeploySettings) -> list[str]:
    """One file per document (and the function role's trust policy); returns the commands to apply them."""
    out_dir.mkdir(parents=True, exist_ok=True)
    commands = []
    for doc in docs:
        path = out_dir / file_name(doc)
        path.write_text(json.dumps(doc.document, indent=2) + "\n", encoding="utf-8")
        if doc.principal is Principal.FUNCTION:
            (out_dir / TRUST_FILE).write_text(json.dumps(trust_policy(), indent=2) + "\n", encoding="utf-8")
        commands.append(f"# {doc.principal.value}{' for target ' + doc.target if doc.target else ''}: "
                        f"in account {doc.account_id}, attach to {doc.attach_to}")
        commands += apply_commands(doc, path, settings)
    return commands


def permissions(
    principal: list[Principal] = typer.Option(
        None, "--principal", "-p",
        help="who the policy is for (repeatable; default: function, or every principal with --out-dir): "
             "function (FC role, account A), deployer (the `s deploy` user, account A), reader (role in "
             "account B), applier (admin running grants apply in B), operator (admin running acrsync in A)"),
    output: Output = OutputOpt,
    out_dir: Path | None = typer.Option(None, "--out-dir",
                                        help="write each policy document to its own file here, and print "
                                             "the aliyun CLI commands that apply them"),
    config: Path | None = typer.Option(None, "--config", "-c",
                                       help="replication config (default: $ACRSYNC_CONFIG)"),
) -> None:
    """Print (or write) the minimal RAM policy documents a principal needs for this config."""
    cfg = load(config)
    settings = DeploySettings.from_env(os.environ)
    principals = list(principal or ([*Principal] if out_dir else [Principal.FUNCTION]))
    by_principal = {p: policy_documents(cfg, p, settings) for p in principals}
    if out_dir is not None:
        docs = [d for p in principals for d in by_principal[p]]
        commands = write_documents(docs, out_dir, settings)
        if output is Output.json:
            typer.echo(
                json.dumps(
                    {
                        "out_dir": str(out_dir),
                        "files": sorted(f.name for f in out_dir.glob("*.json")),
                        "commands": [c for c in commands if not c.startswith("#")],
                    },
                    indent=2,
                )
            )
        else:
            typer.echo("\n".join(commands))
        return
    if output is Output.json:
        if len(principals) == 1:
            p = principals[0]
            extra = {"trust_policy": trust_policy()} if p is Principal.FUNCTION else {}
            typer.echo(json.dumps({"principal": p.value, "policies": [d.to_dict() for d in by_principal[p]],
                                   **extra}, indent=2))
        else:
            typer.echo(json.dumps([{"principal": p.value, "policies": [d.to_dict() for d in by_principal[p]]}
                                   for p in principals], indent=2))
    else:
        typer.echo("".join(_text(by_principal[p], p) for p in principals), nl=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""
    app.command("permissions")(permissions)

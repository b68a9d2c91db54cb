"""`acrsync permissions`: print the minimal RAM policies each principal needs, from the declarations in
acrsync.cloud.permissions and the resources named in the config.
"""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path

import typer

from acrsync.cli.common import load
from acrsync.cloud.permissions import Principal, known_ram_actions, policy_documents


class Output(str, Enum):
    json = "json"
    text = "text"


def _text(docs, principal: Principal) -> str:
    if not docs:
        return (f"# {principal.value}: nothing to grant with this config "
                "(the reader role needs targets[].reader_role_arn)\n")
    unverified = {a for a, ok in known_ram_actions().items() if not ok}
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
    return "\n".join(lines)


def permissions(
    principal: Principal = typer.Option(Principal.FUNCTION, "--principal", "-p",
                                        help="who the policy is for: function (FC role, account A), reader "
                                             "(role in account B), applier (admin running grants apply in B), "
                                             "operator (admin running acrsync in A)"),
    output: Output = typer.Option(Output.text, "--output", "-o", help="json or text"),
    config: Path | None = typer.Option(None, "--config", "-c",
                                       help="replication config (default: $ACRSYNC_CONFIG)"),
) -> None:
    """Print the minimal RAM policy documents a principal needs for this config."""
    cfg = load(config)
    docs = policy_documents(cfg, principal)
    if output is Output.json:
        typer.echo(json.dumps({"principal": principal.value, "policies": [d.to_dict() for d in docs]},
                              indent=2))
    else:
        typer.echo(_text(docs, principal), nl=False)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the top-level app."""
    app.command("permissions")(permissions)

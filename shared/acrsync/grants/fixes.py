"""The documents account B must hold for cross-account sync, filled in for one target, and the
``aliyun ram`` commands that put them in place. Findings quote these; ``grants apply`` writes them.
"""

from __future__ import annotations

import json
import shlex

from acrsync.cloud.permissions import Principal, policy_documents
from acrsync.config import Config, Source, Target
from acrsync.grants.findings import Fix
from acrsync.policy import ASSUME_ROLE, SYNC_ACTIONS, SYNC_ROLE_NAME, cr_service_principal, target_resources


def sync_policy_name(target: Target) -> str:
    """One policy per target instance, so two targets in one account B never overwrite each other."""
    return f"acrsync-sync-{target.instance_id}"


def sync_policy(target: Target) -> dict:
    """The replication guide's policy for this target.

    The guide scopes it to ``instance/<id>``, the API reference to ``repository/<id>``; ACR's own check
    is undocumented, so the policy names both forms, still limited to this one instance.
    """
    return {"Version": "1", "Statement": [{
        "Effect": "Allow",
        "Action": list(SYNC_ACTIONS),
        "Resource": target_resources(target.region, target.account_id, target.instance_id),
    }]}


def trust_policy(source: Source) -> dict:
    """The guide's trust policy: ACR acting for account A may assume the role."""
    return {"Version": "1", "Statement": [{
        "Action": ASSUME_ROLE,
        "Effect": "Allow",
        "Principal": {"Service": [cr_service_principal(source.account_id)]},
    }]}


def reader_policy(config: Config, target: Target) -> dict:
    """What the reader role needs for the grant check, as `acrsync permissions` computes it."""
    arn = target.reader_role_arn or f"acs:ram::{target.account_id}:role/acrsync-reader"
    cfg = config.model_copy(update={"targets": [target.model_copy(update={"reader_role_arn": arn})]})
    docs = policy_documents(cfg, Principal.READER)
    return docs[0].document


def reader_trust_policy(source: Source) -> dict:
    """The reader role must trust account A, whose function role assumes it."""
    return {"Version": "1", "Statement": [{
        "Action": ASSUME_ROLE, "Effect": "Allow",
        "Principal": {"RAM": [f"acs:ram::{source.account_id}:root"]},
    }]}


def dumps(doc: dict) -> str:
    """Compact JSON, as RAM stores it and as a shell argument carries it."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def pretty(doc: dict) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False)


def same_document(a: str | dict, b: str | dict) -> bool:
    """True when two policy documents are equal as JSON (whitespace and key order do not count)."""
    try:
        da = json.loads(a) if isinstance(a, str) else a
        db = json.loads(b) if isinstance(b, str) else b
    except ValueError:
        return False
    return da == db


def _q(s: str) -> str:
    return shlex.quote(s)


def create_role_cmd(source: Source) -> str:
    return (f"aliyun ram CreateRole --RoleName {SYNC_ROLE_NAME} "
            f"--AssumeRolePolicyDocument {_q(dumps(trust_policy(source)))}")


def update_trust_cmd(source: Source, document: dict | None = None) -> str:
    doc = document or trust_policy(source)
    return f"aliyun ram UpdateRole --RoleName {SYNC_ROLE_NAME} --NewAssumeRolePolicyDocument {_q(dumps(doc))}"


def create_policy_cmd(target: Target) -> str:
    return (f"aliyun ram CreatePolicy --PolicyName {sync_policy_name(target)} "
            f"--PolicyDocument {_q(dumps(sync_policy(target)))}")


def create_policy_version_cmd(target: Target) -> str:
    return (f"aliyun ram CreatePolicyVersion --PolicyName {sync_policy_name(target)} "
            f"--PolicyDocument {_q(dumps(sync_policy(target)))} --SetAsDefault true")


def attach_cmd(target: Target) -> str:
    return (f"aliyun ram AttachPolicyToRole --PolicyType Custom --PolicyName {sync_policy_name(target)} "
            f"--RoleName {SYNC_ROLE_NAME}")


def setup_commands(source: Source, target: Target) -> list[str]:
    """Everything from scratch, in order (role, policy, attachment); UpdateRole for an existing role."""
    return [create_role_cmd(source), create_policy_cmd(target), attach_cmd(target),
            "# if the role already exists, set its trust policy instead of creating it:",
            update_trust_cmd(source)]


def role_fix(source: Source, target: Target) -> Fix:
    return Fix(summary=f"in account {target.account_id}, create the role {SYNC_ROLE_NAME} (spelt exactly so: "
                       "'accout', not 'account') trusting ACR for the source account, and attach the sync policy",
               role_name=SYNC_ROLE_NAME, policy_name=sync_policy_name(target),
               policy_json=pretty(sync_policy(target)), trust_json=pretty(trust_policy(source)),
               commands=setup_commands(source, target), automatic=True)


def policy_fix(source: Source, target: Target, *, exists: bool) -> Fix:
    cmds = [create_policy_version_cmd(target) if exists else create_policy_cmd(target), attach_cmd(target)]
    return Fix(summary=f"grant {' and '.join(SYNC_ACTIONS)} on instance {target.instance_id} "
                       f"({target.region}, account {target.account_id}) to {SYNC_ROLE_NAME}",
               role_name=SYNC_ROLE_NAME, policy_name=sync_policy_name(target),
               policy_json=pretty(sync_policy(target)), commands=cmds, automatic=True)


def trust_fix(source: Source, target: Target, document: dict | None = None) -> Fix:
    doc = document or trust_policy(source)
    return Fix(summary=f"let ACR acting for account {source.account_id} assume {SYNC_ROLE_NAME}: put "
                       f"\"{cr_service_principal(source.account_id)}\" in Principal.Service of an Allow "
                       "statement for sts:AssumeRole",
               role_name=SYNC_ROLE_NAME, trust_json=pretty(doc), commands=[update_trust_cmd(source, doc)],
               automatic=True)


def narrow_trust_fix(source: Source, target: Target) -> Fix:
    """For a trust wider than needed; apply never narrows a trust by itself (something may rely on it)."""
    return Fix(summary=f"narrow the trust policy of {SYNC_ROLE_NAME} to ACR acting for account "
                       f"{source.account_id} only (check first that nothing else assumes this role)",
               role_name=SYNC_ROLE_NAME, trust_json=pretty(trust_policy(source)),
               commands=[update_trust_cmd(source)], automatic=False)


def reader_fix(config: Config, target: Target, missing: str | None = None) -> Fix:
    arn = target.reader_role_arn or f"acs:ram::{target.account_id}:role/acrsync-reader"
    role = arn.rsplit("/", 1)[-1]
    pol = reader_policy(config, target)
    name = f"acrsync-reader-{target.instance_id}"
    what = f"grant {missing} to" if missing else "create and configure"
    return Fix(summary=f"{what} the reader role {arn}: it must trust account {config.source.account_id} and "
                       "hold the read-only policy below (set targets[].reader_role_arn to it)",
               role_name=role, policy_name=name, policy_json=pretty(pol),
               trust_json=pretty(reader_trust_policy(config.source)),
               commands=[f"aliyun ram CreateRole --RoleName {role} "
                         f"--AssumeRolePolicyDocument {_q(dumps(reader_trust_policy(config.source)))}",
                         f"aliyun ram CreatePolicy --PolicyName {name} --PolicyDocument {_q(dumps(pol))}",
                         f"aliyun ram AttachPolicyToRole --PolicyType Custom --PolicyName {name} "
                         f"--RoleName {role}"])

"""The documents account B must hold for cross-account sync, filled in for one target, and the
``aliyun ram`` / ``aliyun cr`` commands that put them in place. Findings quote these; ``grants apply``
writes them.
"""

from __future__ import annotations

import dataclasses
import json
import shlex

from acrsync.cloud.permissions import Json, Principal, policy_documents
from acrsync.config import Config, Source, Target
from acrsync.grants.findings import Fix
from acrsync.policy import ASSUME_ROLE, SYNC_ACTIONS, SYNC_ROLE_NAME, cr_service_principal, target_resources

DEFAULT_READER_ARN = "acs:ram::{account}:role/acrsync-reader"
READER_ROLE_DESCRIPTION = ("Read-only view of this account for acrsync in the source account "
                           "(managed by acrsync)")


def sync_policy_name(target: Target) -> str:
    """One policy per target instance, so two targets in one account B never overwrite each other."""
    return f"acrsync-sync-{target.instance_id}"


def sync_policy(target: Target) -> Json:
    """The replication guide's policy for this target.

    The guide scopes it to ``instance/<id>``, the API reference to ``repository/<id>``; ACR's own check
    is undocumented, so the policy names both forms, still limited to this one instance.
    """
    return {"Version": "1", "Statement": [{
        "Effect": "Allow",
        "Action": list(SYNC_ACTIONS),
        "Resource": target_resources(target.region, target.account_id, target.instance_id),
    }]}


def trust_policy(source: Source) -> Json:
    """The guide's trust policy: ACR acting for account A may assume the role."""
    return {"Version": "1", "Statement": [{
        "Action": ASSUME_ROLE,
        "Effect": "Allow",
        "Principal": {"Service": [cr_service_principal(source.account_id)]},
    }]}


def reader_policy(config: Config, target: Target) -> Json:
    """What the reader role needs for the grant check, as `acrsync permissions --principal reader`
    prints it."""
    arn = target.reader_role_arn or DEFAULT_READER_ARN.format(account=target.account_id)
    reader = dataclasses.replace(target, reader_role_arn=arn, enabled=True)
    cfg = dataclasses.replace(config, targets=[reader])
    docs = policy_documents(cfg, Principal.READER)
    return docs[0].document


def reader_trust_policy(source: Source) -> Json:
    """The reader role must trust account A, whose function role assumes it.

    The principal is account A's root, as the replication demo has it: that admits any identity of A
    that A's own RAM allows ``sts:AssumeRole`` on this role, so account A decides which of its roles
    read account B (the function role's policy names the reader ARN). The config does not name the
    function role, so a narrower principal could not be filled in reliably.
    """
    return {"Version": "1", "Statement": [{
        "Action": ASSUME_ROLE, "Effect": "Allow",
        "Principal": {"RAM": [reader_trust_principal(source)]},
    }]}


def reader_trust_principal(source: Source) -> str:
    return f"acs:ram::{source.account_id}:root"


def reader_role_name(target: Target) -> str:
    """The role name in ``targets[].reader_role_arn`` (``acs:ram::<B>:role/<name>``)."""
    return (target.reader_role_arn or DEFAULT_READER_ARN.format(account=target.account_id)).rsplit("/", 1)[-1]


def reader_policy_name(target: Target) -> str:
    """One reader policy per target instance, like the sync policy."""
    return f"acrsync-reader-{target.instance_id}"



def dumps(doc: Json) -> str:
    """Compact JSON, as RAM stores it and as a shell argument carries it."""
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)


def pretty(doc: Json) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False)


def same_document(a: str | Json, b: str | Json) -> bool:
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
    return role_create_cmd(SYNC_ROLE_NAME, trust_policy(source))


def update_trust_cmd(source: Source, document: Json | None = None) -> str:
    return role_trust_cmd(SYNC_ROLE_NAME, document or trust_policy(source))


def create_policy_cmd(target: Target) -> str:
    return policy_create_cmd(sync_policy_name(target), sync_policy(target))


def create_policy_version_cmd(target: Target) -> str:
    return policy_version_cmd(sync_policy_name(target), sync_policy(target))


def attach_cmd(target: Target) -> str:
    return policy_attach_cmd(sync_policy_name(target), "Custom", SYNC_ROLE_NAME)


# ---- the same commands for any role or policy ----------------------------------------------------

def role_create_cmd(role: str, trust: Json) -> str:
    return f"aliyun ram CreateRole --RoleName {_q(role)} --AssumeRolePolicyDocument {_q(dumps(trust))}"


def role_trust_cmd(role: str, trust: Json) -> str:
    return f"aliyun ram UpdateRole --RoleName {_q(role)} --NewAssumeRolePolicyDocument {_q(dumps(trust))}"


def policy_create_cmd(name: str, document: Json) -> str:
    return f"aliyun ram CreatePolicy --PolicyName {_q(name)} --PolicyDocument {_q(dumps(document))}"


def policy_version_cmd(name: str, document: Json) -> str:
    return (f"aliyun ram CreatePolicyVersion --PolicyName {_q(name)} --PolicyDocument {_q(dumps(document))} "
            "--SetAsDefault true")


def policy_attach_cmd(name: str, policy_type: str, role: str) -> str:
    return (f"aliyun ram AttachPolicyToRole --PolicyType {policy_type} --PolicyName {_q(name)} "
            f"--RoleName {_q(role)}")


def policy_detach_cmd(name: str, policy_type: str, role: str) -> str:
    return (f"aliyun ram DetachPolicyFromRole --PolicyType {policy_type} --PolicyName {_q(name)} "
            f"--RoleName {_q(role)}")


# ---- target namespaces (aliyun cr, Container Registry 2018-12-01) -------------------------------

DEFAULT_REPO_TYPE = "PRIVATE"   # a replica never becomes public by accident


def create_namespace_cmd(target: Target, namespace: str) -> str:
    return (f"aliyun cr CreateNamespace --region {target.region} --InstanceId {target.instance_id} "
            f"--NamespaceName {_q(namespace)} --AutoCreateRepo true --DefaultRepoType {DEFAULT_REPO_TYPE}")


def update_namespace_cmd(target: Target, namespace: str, default_repo_type: str | None = None) -> str:
    """Turns AutoCreateRepo on; the namespace's default repository type, when known, is sent unchanged."""
    keep = f" --DefaultRepoType {default_repo_type}" if default_repo_type else ""
    return (f"aliyun cr UpdateNamespace --region {target.region} --InstanceId {target.instance_id} "
            f"--NamespaceName {_q(namespace)} --AutoCreateRepo true{keep}")


def namespace_missing_fix(target: Target, namespace: str) -> Fix:
    return Fix(summary=f"create namespace {namespace} in {target.instance_id} with AutoCreateRepo on",
               commands=[create_namespace_cmd(target, namespace)], automatic=True)


def namespace_autocreate_fix(target: Target, namespace: str, default_repo_type: str | None = None) -> Fix:
    return Fix(summary=f"enable AutoCreateRepo on {target.instance_id}/{namespace}",
               commands=[update_namespace_cmd(target, namespace, default_repo_type)], automatic=True)


def setup_commands(source: Source, target: Target) -> list[str]:
    """Everything from scratch, in order (role, policy, attachment); UpdateRole for an existing role."""
    return [create_role_cmd(source), create_policy_cmd(target), attach_cmd(target),
            "# if the role already exists, set its trust policy instead of creating it:",
            update_trust_cmd(source)]


def role_fix(source: Source, target: Target) -> Fix:
    return Fix(summary=f"in account {target.account_id}, create the role {SYNC_ROLE_NAME} (spelt exactly "
                       "so: 'accout', not 'account') trusting ACR for the source account, and attach the "
                       "sync policy",
               role_name=SYNC_ROLE_NAME, policy_name=sync_policy_name(target),
               policy_json=pretty(sync_policy(target)), trust_json=pretty(trust_policy(source)),
               commands=setup_commands(source, target), automatic=True)


def policy_fix(source: Source, target: Target, *, exists: bool) -> Fix:
    cmds = [create_policy_version_cmd(target) if exists else create_policy_cmd(target), attach_cmd(target)]
    return Fix(summary=f"grant {' and '.join(SYNC_ACTIONS)} on instance {target.instance_id} "
                       f"({target.region}, account {target.account_id}) to {SYNC_ROLE_NAME}",
               role_name=SYNC_ROLE_NAME, policy_name=sync_policy_name(target),
               policy_json=pretty(sync_policy(target)), commands=cmds, automatic=True)


def trust_fix(source: Source, target: Target, document: Json | None = None) -> Fix:
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
    arn = target.reader_role_arn or DEFAULT_READER_ARN.format(account=target.account_id)
    role = reader_role_name(target)
    pol = reader_policy(config, target)
    trust = reader_trust_policy(config.source)
    name = reader_policy_name(target)
    what = f"grant {missing} to" if missing else "create and configure"
    return Fix(summary=f"{what} the reader role {arn}: it must trust account {config.source.account_id} and "
                       "hold the read-only policy below (set targets[].reader_role_arn to it)",
               role_name=role, policy_name=name, policy_json=pretty(pol), trust_json=pretty(trust),
               commands=[role_create_cmd(role, trust), policy_create_cmd(name, pol),
                         policy_attach_cmd(name, "Custom", role),
                         "# if the role already exists, add the trust statement above to its trust policy:",
                         role_trust_cmd(role, trust)],
               automatic=bool(target.reader_role_arn))


def deny_fix(policy_label: str, policy_name: str, policy_type: str, action: str, target: Target) -> Fix:
    """A Deny in another policy attached to the sync role: detach it (never edited), by flag or by hand."""
    return Fix(summary=f"edit or detach {policy_label}: drop the Deny for {action} on {target.instance_id}, "
                       "or run `acrsync grants apply --detach-conflicting` to detach it from "
                       f"{SYNC_ROLE_NAME} (the policy itself is kept)",
               role_name=SYNC_ROLE_NAME, policy_name=policy_name,
               commands=[policy_detach_cmd(policy_name, policy_type, SYNC_ROLE_NAME)])

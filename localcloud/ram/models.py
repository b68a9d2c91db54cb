"""RAM state changes and the rules RAM enforces on them (names, documents, version limits, attachments).

The scenario loader builds accounts through these same functions, so a scenario cannot hold a role or policy
that the real RAM API would have refused.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from importlib import resources

from localcloud.clock import iso
from localcloud.policy import PERMISSION, TRUST, PolicyDocumentError, validate_document
from localcloud.service import ServiceError
from localcloud.state import Account, Policy, PolicyVersion, Role, World

ROLE_NAME = re.compile(r"[A-Za-z0-9.\-]{1,64}")
POLICY_NAME = re.compile(r"[A-Za-z0-9\-]{1,128}")
POLICY_TYPES = ("System", "Custom")
MAX_POLICY_VERSIONS = 5
ROTATE_OLDEST = "DeleteOldestNonDefaultVersionWhenLimitExceeded"
MIN_SESSION, MAX_SESSION = 3600, 43200
SYSTEM_POLICY_DATE = "2015-04-28T00:00:00Z"   # a fixed date: System policies predate every scenario


@functools.lru_cache(maxsize=1)
def _system_policy_data() -> tuple[tuple[str, str, str], ...]:
    raw = json.loads(resources.files("localcloud").joinpath("data/system_policies.json").read_text("utf-8"))
    return tuple((p["name"], p["description"], json.dumps(p["document"], indent=2)) for p in raw["policies"])


def system_policies() -> dict[str, Policy]:
    """Fresh Policy objects for the System policies localcloud ships (read-only for callers)."""
    out = {}
    for name, description, document in _system_policy_data():
        out[name] = Policy(name=name, type="System", description=description,
                           versions={"v1": PolicyVersion("v1", document, SYSTEM_POLICY_DATE)},
                           default_version="v1", create_date=SYSTEM_POLICY_DATE,
                           update_date=SYSTEM_POLICY_DATE)
    return out


def find_policy(world: World, account_id: str, name: str, policy_type: str | None = None) -> Policy | None:
    """A Custom policy of the account or a System policy; ``policy_type`` None tries Custom first."""
    account = world.account(account_id)
    if policy_type in (None, "Custom") and account is not None and name in account.policies:
        return account.policies[name]
    if policy_type in (None, "System"):
        return system_policies().get(name)
    return None


def _now(world: World) -> str:
    return iso(world.clock.now())


def _account(world: World, account_id: str) -> Account:
    account = world.account(account_id)
    if account is None:
        raise ServiceError(404, "EntityNotExist.Account", f"The account {account_id} does not exist.")
    return account


def check_document(document: str, *, trust: bool = False) -> str:
    """Validate a policy (or trust policy) document as RAM does; returns it unchanged or raises
    ``400 MalformedPolicyDocument`` (``localcloud.policy.validate_document`` lists the rules and sources)."""
    try:
        validate_document(document, TRUST if trust else PERMISSION)
    except PolicyDocumentError as exc:
        what = "trust policy" if trust else "policy document"
        raise ServiceError(400, "MalformedPolicyDocument", f"The {what} is malformed: {exc}.") from None
    return document


def check_policy_type(policy_type: str) -> str:
    if policy_type not in POLICY_TYPES:
        raise ServiceError(400, "InvalidParameter.PolicyType",
                           f"The parameter PolicyType must be System or Custom, not {policy_type!r}.")
    return policy_type


def get_role(world: World, account_id: str, role_name: str) -> Role:
    role = _account(world, account_id).roles.get(role_name.lower())
    if role is None:
        raise ServiceError(404, "EntityNotExist.Role", f"The role not exists: {role_name}.")
    return role


def role_id_for(account_id: str, name: str) -> str:
    """A stable 19-digit role id (RAM role ids are numeric strings) so ids survive emulator restarts."""
    digest = hashlib.sha256(f"{account_id}/{name.lower()}".encode()).hexdigest()
    return "3" + str(int(digest[:16], 16)).rjust(18, "0")[-18:]


def create_role(world: World, account_id: str, name: str, trust_policy: str, *, description: str = "",
                max_session_duration: int | None = None) -> Role:
    if not ROLE_NAME.fullmatch(name or ""):
        raise ServiceError(400, "InvalidParameter.RoleName",
                           f"The parameter RoleName {name!r} is invalid: use 1-64 letters, digits, '.' "
                           "or '-'.")
    check_document(trust_policy, trust=True)
    duration = MIN_SESSION if max_session_duration is None else int(max_session_duration)
    if not MIN_SESSION <= duration <= MAX_SESSION:
        raise ServiceError(400, "InvalidParameter.MaxSessionDuration",
                           f"MaxSessionDuration must be between {MIN_SESSION} and {MAX_SESSION} seconds.")
    with world.lock:
        account = _account(world, account_id)
        if name.lower() in account.roles:
            raise ServiceError(409, "EntityAlreadyExists.Role", f"The role already exists: {name}.")
        now = _now(world)
        role = Role(name=name, role_id=role_id_for(account_id, name), account_id=account_id,
                    trust_policy=trust_policy, description=description, max_session_duration=duration,
                    create_date=now, update_date=now)
        account.roles[name.lower()] = role
        return role


def update_role(world: World, account_id: str, name: str, *, trust_policy: str | None = None,
                description: str | None = None, max_session_duration: int | None = None) -> Role:
    if trust_policy is not None:
        check_document(trust_policy, trust=True)
    if max_session_duration is not None and not MIN_SESSION <= max_session_duration <= MAX_SESSION:
        raise ServiceError(400, "InvalidParameter.NewMaxSessionDuration",
                           f"NewMaxSessionDuration must be between {MIN_SESSION} and {MAX_SESSION} seconds.")
    with world.lock:
        role = get_role(world, account_id, name)
        if trust_policy is not None:
            role.trust_policy = trust_policy
        if description is not None:
            role.description = description
        if max_session_duration is not None:
            role.max_session_duration = max_session_duration
        role.update_date = _now(world)
        return role


def list_roles(world: World, account_id: str) -> list[Role]:
    with world.lock:
        return sorted(_account(world, account_id).roles.values(), key=lambda r: r.name.lower())


def get_policy(world: World, account_id: str, name: str, policy_type: str) -> Policy:
    check_policy_type(policy_type)
    policy = find_policy(world, account_id, name, policy_type)
    if policy is None:
        raise ServiceError(404, "EntityNotExist.Policy", f"The policy not exists: {name}.")
    return policy


def create_policy(world: World, account_id: str, name: str, document: str, *,
                  description: str = "") -> Policy:
    if not POLICY_NAME.fullmatch(name or ""):
        raise ServiceError(400, "InvalidParameter.PolicyName",
                           f"The parameter PolicyName {name!r} is invalid: use 1-128 letters, digits or '-'.")
    check_document(document)
    with world.lock:
        account = _account(world, account_id)
        if name in account.policies:
            raise ServiceError(409, "EntityAlreadyExists.Policy", f"The policy already exists: {name}.")
        now = _now(world)
        policy = Policy(name=name, type="Custom", description=description,
                        versions={"v1": PolicyVersion("v1", document, now)}, default_version="v1",
                        create_date=now, update_date=now)
        account.policies[name] = policy
        return policy


def version_number(version_id: str) -> int:
    return int(version_id[1:]) if version_id[1:].isdigit() else 0


def create_policy_version(world: World, account_id: str, name: str, document: str, *, set_as_default: bool,
                          rotate_strategy: str | None) -> PolicyVersion:
    check_document(document)
    if rotate_strategy not in (None, "", "None", ROTATE_OLDEST):
        raise ServiceError(400, "InvalidParameter.RotateStrategy",
                           f"RotateStrategy must be None or {ROTATE_OLDEST}, not {rotate_strategy!r}.")
    with world.lock:
        policy = get_policy(world, account_id, name, "Custom")
        if len(policy.versions) >= MAX_POLICY_VERSIONS:
            if rotate_strategy != ROTATE_OLDEST:
                raise ServiceError(409, "LimitExceeded.Policy.Version",
                                   f"The policy {name} already has {MAX_POLICY_VERSIONS} versions: delete "
                                   f"one or pass RotateStrategy={ROTATE_OLDEST}.")
            oldest = min((v for v in policy.versions if v != policy.default_version), key=version_number)
            del policy.versions[oldest]
        number = max(version_number(v) for v in policy.versions) + 1 if policy.versions else 1
        now = _now(world)
        version = PolicyVersion(f"v{number}", document, now)
        policy.versions[version.version_id] = version
        if set_as_default:
            policy.default_version = version.version_id
        policy.update_date = now
        return version


def get_policy_version(world: World, account_id: str, name: str, policy_type: str,
                       version_id: str) -> PolicyVersion:
    policy = get_policy(world, account_id, name, policy_type)
    version = policy.versions.get(version_id)
    if version is None:
        raise ServiceError(404, "EntityNotExist.Policy.Version",
                           f"The policy version not exists: {name} {version_id}.")
    return version


def attach_policy_to_role(world: World, account_id: str, policy_name: str, policy_type: str,
                          role_name: str) -> None:
    with world.lock:
        role = get_role(world, account_id, role_name)
        policy = get_policy(world, account_id, policy_name, policy_type)
        key = (policy.name, policy.type)
        if key in role.attached:
            raise ServiceError(409, "EntityAlreadyExists.Role.Policy",
                               f"The policy {policy_name} is already attached to the role {role.name}.")
        role.attached.append(key)
        role.attach_dates[key] = _now(world)


def detach_policy_from_role(world: World, account_id: str, policy_name: str, policy_type: str,
                            role_name: str) -> None:
    check_policy_type(policy_type)
    with world.lock:
        role = get_role(world, account_id, role_name)
        key = (policy_name, policy_type)
        if key not in role.attached:
            raise ServiceError(404, "EntityNotExist.Role.Policy",
                               f"The policy {policy_name} is not attached to the role {role.name}.")
        role.attached.remove(key)
        role.attach_dates.pop(key, None)


def attachment_count(world: World, account_id: str, policy: Policy) -> int:
    account = world.account(account_id)
    if account is None:
        return 0
    key = (policy.name, policy.type)
    roles = sum(1 for r in account.roles.values() if key in r.attached)
    users = sum(1 for u in account.users.values() if policy.name in u.get("policies", []))
    return roles + users

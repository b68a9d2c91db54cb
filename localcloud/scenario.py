"""Scenario files: the accounts, identities, RAM roles/policies and ACR instances a LocalCloud starts with.

A scenario is YAML (or an equivalent dict). It is validated as a whole and every problem is reported with
its path, e.g. ``instances[1].account: account 3333 is not declared under accounts``. RAM entities are created
through ``localcloud.ram.models``, so a scenario cannot contain what the RAM API itself would refuse.
Ids (``crn-``/``crr-``, role ids, digests a tag does not give) are derived from names, so they are stable
across restarts. See docs/localcloud.md for the full reference.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import re
from pathlib import Path
from typing import Any, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from localcloud.clock import Clock, parse_iso
from localcloud.ram import models as ram
from localcloud.service import ServiceError
from localcloud.state import Account, Instance, Namespace, Repo, Tag, World

EDITIONS = ("Enterprise_Basic", "Enterprise_Standard", "Enterprise_Advanced")
_DIGEST = re.compile(r"(?:sha256:)?([0-9a-f]{64})")


class ScenarioError(ValueError):
    """The scenario cannot be loaded; ``problems`` lists each one with its path."""

    def __init__(self, problems: list[str], source: str = "scenario"):
        self.problems = problems
        super().__init__(f"{source} is invalid:\n  - " + "\n  - ".join(problems))


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class KeySpec(_Model):
    id: str = Field(min_length=1)
    secret: str = Field(min_length=1)


class UserSpec(_Model):
    name: str = Field(min_length=1)
    access_keys: list[KeySpec] = []
    policies: list[str] = []


class PolicySpec(_Model):
    name: str
    document: Union[str, dict[str, Any]]
    description: str = ""


class PolicyRef(_Model):
    """Under a role: ``{name, document}`` creates a Custom policy and attaches it; ``{name[, type]}`` attaches
    an existing one (Custom of the account first, then System)."""

    name: str
    document: Union[str, dict[str, Any], None] = None
    description: str = ""
    type: Literal["Custom", "System", None] = None


class RoleSpec(_Model):
    name: str
    trust_policy: Union[str, dict[str, Any]]
    description: str = ""
    max_session_duration: int | None = None
    policies: list[Union[str, PolicyRef]] = []


class AccountSpec(_Model):
    id: str = Field(pattern=r"^\d{1,20}$")
    access_keys: list[KeySpec] = []
    users: list[UserSpec] = []
    roles: list[RoleSpec] = []
    policies: list[PolicySpec] = []


class TagSpec(_Model):
    tag: str = Field(min_length=1)
    digest: str | None = None
    size: int | None = None


class RepoSpec(_Model):
    name: str = Field(min_length=1)
    type: Literal["PUBLIC", "PRIVATE"] = "PRIVATE"
    tag_immutability: bool = False
    summary: str = ""
    tags: list[TagSpec] = []


class NamespaceSpec(_Model):
    name: str = Field(min_length=1)
    auto_create_repo: bool = False
    default_repo_type: Literal["PUBLIC", "PRIVATE"] = "PRIVATE"
    repos: list[RepoSpec] = []


class InstanceSpec(_Model):
    id: str = Field(pattern=r"^cri-[a-z0-9]+$")
    account: str
    region: str = Field(min_length=1)
    edition: Literal["Enterprise_Basic", "Enterprise_Standard", "Enterprise_Advanced"]
    name: str = ""
    status: str = "RUNNING"
    namespaces: list[NamespaceSpec] = []
    sync_rules: list[dict[str, Any]] = []      # read by localcloud.acr.models.install


class SettingsSpec(BaseModel):
    model_config = ConfigDict(extra="allow", coerce_numbers_to_str=True)
    start_time: str | None = None
    sync: dict[str, Any] = {}


class TablestoreInstanceSpec(_Model):
    name: str = Field(pattern=r"^[a-z][a-z0-9-]{1,14}[a-z0-9]$")   # Tablestore instance naming rules
    account: str
    region: str = Field(min_length=1)


class ScenarioSpec(_Model):
    accounts: list[AccountSpec] = Field(min_length=1)
    instances: list[InstanceSpec] = []
    tablestore: list[TablestoreInstanceSpec] | None = None   # None: instances appear on first use
    functions: list[dict[str, Any]] = []       # FC 3.0 functions, checked by localcloud.fc.models.install
    settings: SettingsSpec = SettingsSpec()


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def read(source: str | Path | dict) -> tuple[dict, str]:
    """The raw scenario mapping and a name for error messages."""
    if isinstance(source, dict):
        return source, "scenario"
    path = Path(source)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ScenarioError([f"cannot read the scenario file: {exc}"], str(path)) from None
    except yaml.YAMLError as exc:
        raise ScenarioError([f"not valid YAML: {exc}"], str(path)) from None
    if not isinstance(raw, dict):
        raise ScenarioError(["the scenario must be a mapping with accounts:, instances:, "
                             "settings:"], str(path))
    return raw, str(path)


def parse(source: str | Path | dict) -> ScenarioSpec:
    raw, name = read(source)
    try:
        spec = ScenarioSpec.model_validate(raw)
    except ValidationError as exc:
        problems = [f"{_path(e['loc'])}: {e['msg']}" for e in exc.errors()]
        raise ScenarioError(problems, name) from None
    problems = _cross_check(spec)
    if problems:
        raise ScenarioError(problems, name)
    return spec


def start_time(spec: ScenarioSpec) -> float | None:
    return parse_iso(spec.settings.start_time) if spec.settings.start_time else None


def _json(document: str | dict) -> str:
    return document if isinstance(document, str) else json.dumps(document, indent=2)


def _cross_check(spec: ScenarioSpec) -> list[str]:
    problems: list[str] = []
    accounts = {}
    key_owner: dict[str, str] = {}
    for i, acc in enumerate(spec.accounts):
        where = f"accounts[{i}]"
        if acc.id in accounts:
            problems.append(f"{where}.id: account {acc.id} is declared twice")
        accounts[acc.id] = acc
        keys = [(f"{where}.access_keys[{k}]", key) for k, key in enumerate(acc.access_keys)]
        for u, user in enumerate(acc.users):
            keys += [(f"{where}.users[{u}].access_keys[{k}]", key) for k, key in enumerate(user.access_keys)]
        for kpath, key in keys:
            if key.id.startswith("STS."):
                problems.append(f"{kpath}.id: ids starting with 'STS.' are reserved for temporary "
                                "credentials")
            if key.id in key_owner:
                problems.append(f"{kpath}.id: access key {key.id} is already used at {key_owner[key.id]}")
            key_owner.setdefault(key.id, kpath)
        custom = {p.name for p in acc.policies}
        custom |= {r.name for role in acc.roles for r in role.policies if isinstance(r, PolicyRef)
                   and r.document}
        system = ram.system_policies()
        for u, user in enumerate(acc.users):
            for p, name in enumerate(user.policies):
                if name not in custom and name not in system:
                    problems.append(f"{where}.users[{u}].policies[{p}]: policy {name} is neither "
                                    f"declared under {where}.policies nor a System policy "
                                    f"({', '.join(sorted(system))})")
        for r, role in enumerate(acc.roles):
            for p, ref in enumerate(role.policies):
                name = ref if isinstance(ref, str) else ref.name
                has_doc = isinstance(ref, PolicyRef) and ref.document is not None
                if not has_doc and name not in custom and name not in system:
                    problems.append(f"{where}.roles[{r}].policies[{p}]: policy {name} has no document and is "
                                    f"neither declared under {where}.policies nor a System policy")
                if has_doc and name in {q.name for q in acc.policies}:
                    problems.append(f"{where}.roles[{r}].policies[{p}]: policy {name} is also declared under "
                                    f"{where}.policies; give the document in one place only")
    ots_names: set[str] = set()
    for i, ots in enumerate(spec.tablestore or []):
        if ots.account not in accounts:
            problems.append(f"tablestore[{i}].account: account {ots.account} is not declared under accounts")
        if ots.name in ots_names:
            problems.append(f"tablestore[{i}].name: Tablestore instance {ots.name} is declared twice")
        ots_names.add(ots.name)
    seen_instances: set[str] = set()
    for i, inst in enumerate(spec.instances):
        where = f"instances[{i}]"
        if inst.account not in accounts:
            problems.append(f"{where}.account: account {inst.account} is not declared under accounts")
        if inst.id in seen_instances:
            problems.append(f"{where}.id: instance {inst.id} is declared twice")
        seen_instances.add(inst.id)
        names: set[str] = set()
        for n, ns in enumerate(inst.namespaces):
            if ns.name in names:
                problems.append(f"{where}.namespaces[{n}].name: namespace {ns.name} is declared twice")
            names.add(ns.name)
            repos: set[str] = set()
            for r, repo in enumerate(ns.repos):
                rpath = f"{where}.namespaces[{n}].repos[{r}]"
                if repo.name in repos:
                    problems.append(f"{rpath}.name: repository {repo.name} is declared twice")
                repos.add(repo.name)
                tags: set[str] = set()
                for t, tag in enumerate(repo.tags):
                    if tag.tag in tags:
                        problems.append(f"{rpath}.tags[{t}].tag: tag {tag.tag} is declared twice")
                    tags.add(tag.tag)
                    if tag.digest is not None and not _DIGEST.fullmatch(tag.digest):
                        problems.append(f"{rpath}.tags[{t}].digest: {tag.digest!r} is not a sha256 digest "
                                        f"(64 lower-case hex characters, optionally prefixed with 'sha256:')")
    return problems


def _stable_hex(*parts: str, length: int = 16) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def _build_account(world: World, acc: AccountSpec, where: str) -> None:
    account = Account(account_id=acc.id, access_keys={k.id: k.secret for k in acc.access_keys})
    account.users = {u.name: {"access_keys": {k.id: k.secret for k in u.access_keys},
                              "policies": list(u.policies)}
                     for u in acc.users}
    world.accounts[acc.id] = account
    where_now = where
    try:
        for p, pol in enumerate(acc.policies):
            where_now = f"{where}.policies[{p}]"
            ram.create_policy(world, acc.id, pol.name, _json(pol.document), description=pol.description)
        for r, role in enumerate(acc.roles):
            where_now = f"{where}.roles[{r}]"
            ram.create_role(world, acc.id, role.name, _json(role.trust_policy), description=role.description,
                            max_session_duration=role.max_session_duration)
            for p, ref in enumerate(role.policies):
                where_now = f"{where}.roles[{r}].policies[{p}]"
                if isinstance(ref, str):
                    ref = PolicyRef(name=ref)
                if ref.document is not None:
                    ram.create_policy(world, acc.id, ref.name, _json(ref.document),
                                      description=ref.description)
                    kind = "Custom"
                else:
                    found = ram.find_policy(world, acc.id, ref.name, ref.type)
                    kind = found.type if found is not None else (ref.type or "Custom")
                ram.attach_policy_to_role(world, acc.id, ref.name, kind, role.name)
    except ServiceError as exc:
        raise ScenarioError([f"{where_now}: {exc.code}: {exc.message}"]) from None


def _digest(tag: TagSpec, *parts: str) -> str:
    if tag.digest:
        m = _DIGEST.fullmatch(tag.digest)
        assert m is not None   # checked by _cross_check
        return m.group(1)
    return hashlib.sha256(("localcloud-image:" + "/".join(parts)).encode()).hexdigest()


def _build_instance(world: World, inst: InstanceSpec, now_ms: int) -> None:
    instance = Instance(instance_id=inst.id, account_id=inst.account, region=inst.region,
                        edition=inst.edition,
                        name=inst.name or inst.id, status=inst.status, created_ms=now_ms)
    for ns in inst.namespaces:
        namespace = Namespace(namespace_id="crn-" + _stable_hex(inst.id, ns.name), name=ns.name,
                              instance_id=inst.id, auto_create_repo=ns.auto_create_repo,
                              default_repo_type=ns.default_repo_type)
        # Images a scenario declares were pushed before it starts, and before the rules it declares (those
        # exist from the whole second before the start): a rule never copied them, as ACR's rules copy only
        # later pushes (https://www.alibabacloud.com/help/en/acr/user-guide/replicate-images-across-accounts).
        pushed_ms = (now_ms // 1000 - 2) * 1000
        for rs in ns.repos:
            repo = Repo(repo_id="crr-" + _stable_hex(inst.id, ns.name, rs.name), name=rs.name,
                        namespace=ns.name,
                        instance_id=inst.id, type=rs.type, tag_immutability=rs.tag_immutability,
                        summary=rs.summary, created_ms=now_ms, modified_ms=now_ms)
            for ts in rs.tags:
                digest = _digest(ts, inst.id, ns.name, rs.name, ts.tag)
                size = ts.size if ts.size is not None else 1_000_000 + int(digest[:6], 16) * 8
                repo.tags[ts.tag] = Tag(tag=ts.tag, digest=digest,
                                        image_id=hashlib.sha256(digest.encode()).hexdigest(),
                                        size=size, created_ms=pushed_ms, updated_ms=pushed_ms)
            namespace.repos[rs.name] = repo
        instance.namespaces[ns.name] = namespace
    world.instances[inst.id] = instance


def build_world(spec: ScenarioSpec, clock: Clock) -> World:
    """A World holding everything the scenario declares, then the services' own state (e.g. ACR rules)."""
    world = World(clock=clock)
    world.settings = spec.settings.model_dump()
    for i, acc in enumerate(spec.accounts):
        _build_account(world, acc, f"accounts[{i}]")
    now_ms = int(clock.now() * 1000)
    for inst in spec.instances:
        _build_instance(world, inst, now_ms)
    if importlib.util.find_spec("localcloud.ots.access") is not None:
        importlib.import_module("localcloud.ots.access").install(
            world, None if spec.tablestore is None else [t.model_dump() for t in spec.tablestore])
    if importlib.util.find_spec("localcloud.acr.models") is not None:
        acr_models = importlib.import_module("localcloud.acr.models")
        try:
            acr_models.install(world, spec.model_dump())
        except (ValueError, ServiceError) as exc:
            raise ScenarioError([str(exc)]) from None
    if importlib.util.find_spec("localcloud.fc.models") is not None:
        fc_models = importlib.import_module("localcloud.fc.models")
        try:
            fc_models.install(world, spec.model_dump())
        except ValueError as exc:
            raise ScenarioError(getattr(exc, "problems", None) or [str(exc)]) from None
    return world

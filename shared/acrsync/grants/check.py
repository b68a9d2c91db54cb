"""The grant and prerequisite checks for one target, over injected adapters (no SDK imports).

``check_target`` takes the adapters as parameters: the RAM reader of account B, the source ACR and the
target ACR (read through the reader role). Unit tests pass in-memory fakes of these adapters, the CLI
and the push path pass the real ones from ``acrsync.cloud``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Iterable
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from acrsync import policy as P
from acrsync.cloud.errors import AccessDenied, CloudError, NotFound
from acrsync.cloud.permissions import TABLE, Json
from acrsync.config import Config, Source, Target
from acrsync.grants import fixes
from acrsync.grants.findings import Evidence, Finding, Fix, PolicyName, finding
from acrsync.model import InstanceInfo, NamespaceInfo, RepoInfo
from acrsync.regions import PUBLIC_TO_RESTRICTED_RULE, replication_allowed
from acrsync.roles import PolicyInfo, PolicyRef, RoleInfo
from acrsync.value import Frozen, dataclass

if TYPE_CHECKING:
    from acrsync.deps import Session

T = TypeVar("T")

SOURCE_EDITIONS = ("Enterprise_Advanced",)
TARGET_EDITIONS = ("Enterprise_Basic", "Enterprise_Advanced")
DISPUTED_EDITION = "Enterprise_Standard"
EDITION_DISAGREEMENT = ("acrsync follows the replication guide it is built on, which names only "
                        "Advanced (Premium) as a source and Basic or Advanced as a target; another "
                        "version of the guide also lists Standard")
# What a reader role that cannot be assumed keeps from being checked (reported as "not checked").
TARGET_SIDE_CHECKS = ("the target instance's edition", "the target namespaces and repositories")
GRANT_CHECKS = (f"the role {P.SYNC_ROLE_NAME}", "its trust policy", "the policies attached to it")


class RamReader(Protocol):
    def get_role(self, name: str) -> RoleInfo | None: ...
    def list_roles(self) -> list[RoleInfo]: ...
    def list_policies_for_role(self, role_name: str) -> list[PolicyRef]: ...
    def get_policy(self, name: str, type: str) -> PolicyInfo | None: ...


class AcrReader(Protocol):
    def get_instance(self, instance_id: str) -> InstanceInfo: ...
    def get_namespace(self, instance_id: str, name: str) -> NamespaceInfo | None: ...
    def list_namespaces(self, instance_id: str) -> list[NamespaceInfo]: ...
    def get_repository(self, instance_id: str, namespace: str, repo: str) -> RepoInfo | None: ...


class _Stop(Exception):
    """A read failed in a way that ends this check; carries the finding that says why."""

    def __init__(self, f: Finding):
        self.finding = f
        super().__init__(f.message)


def _ram_action(err: CloudError, fallback: str) -> str:
    decl = TABLE.get((err.service, err.action)) if err.service and err.action else None
    return (decl.ram_action if decl and decl.ram_action else None) or fallback


class _ReaderUnusable(Exception):
    """The reader role cannot be assumed: nothing in account B can be read, so nothing there is checked."""


class _Reads:
    """Runs the reads of one check and turns their failures into findings.

    A failure to assume the reader role is remembered: later reads through it are not attempted, and the
    checks they belong to are listed as not checked in one READER_ROLE_CANNOT_READ finding.
    """

    def __init__(self, config: Config, target: Target):
        self.config = config
        self.target = target
        self.unusable: Finding | None = None
        self.not_checked: list[str] = []

    def prevented(self, checks: Iterable[str]) -> None:
        self.not_checked.extend(c for c in checks if c not in self.not_checked)

    def unusable_finding(self) -> list[Finding]:
        """The one finding for a reader role that could not be assumed, with what it kept unchecked."""
        if self.unusable is None:
            return []
        return [dataclasses.replace(self.unusable, not_checked=list(self.not_checked))]

    def via_reader(self, what: str, ram_action: str, fn: Callable[..., T], *args: Any) -> T:
        """A read in account B through the reader role: a refusal is the reader's missing permission."""
        t = self.target
        if self.unusable is not None:
            raise _ReaderUnusable()
        try:
            return fn(*args)
        except NotFound as e:
            if e.service != "sts":
                raise
            self.unusable = finding(                   # AssumeRole: the reader role itself is missing
                "READER_ROLE_CANNOT_READ", t.name,
                f"the reader role {t.reader_role_arn} cannot be assumed: it does not exist ({e.code}); "
                f"create it in account {t.account_id} with the trust and read-only policy below. Nothing in "
                f"account {t.account_id} was checked",
                evidence=[Evidence(source=f"{e.service}:{e.action}", detail=str(e))],
                fix=fixes.reader_fix(self.config, t))
            raise _ReaderUnusable() from None
        except AccessDenied as e:
            if e.service == "sts":
                self.unusable = finding(
                    "READER_ROLE_CANNOT_READ", t.name,
                    f"the reader role {t.reader_role_arn} cannot be assumed from account "
                    f"{self.config.source.account_id} ({e.code}: {e.message}); its trust policy must trust "
                    f"account {self.config.source.account_id} and the function role needs sts:AssumeRole on "
                    f"it. Nothing in account {t.account_id} was checked",
                    evidence=[Evidence(source=f"{e.service}:{e.action}", detail=str(e))],
                    fix=fixes.reader_fix(self.config, t))
                raise _ReaderUnusable() from None
            missing = _ram_action(e, ram_action)
            msg = (f"the reader role {t.reader_role_arn} may not {what}: it lacks {missing} "
                   f"({e.code}); attach the reader policy below")
            raise _Stop(finding("READER_ROLE_CANNOT_READ", t.name, msg,
                                evidence=[Evidence(source=f"{e.service}:{e.action}", detail=str(e))],
                                fix=fixes.reader_fix(self.config, t, missing))) from None
        except CloudError as e:
            raise _Stop(finding("CHECK_FAILED", t.name,
                                f"could not {what} through the reader role: {e}. Run the check again; "
                                "if it persists, check the endpoint and network",
                                evidence=[Evidence(source=f"{e.service}:{e.action}",
                                                   detail=str(e))])) from None


# ---- grants ---------------------------------------------------------------------------------------

def check_grants(config: Config, target: Target, ram: RamReader | None) -> list[Finding]:
    """Is account B's role set up so ACR acting for account A may sync into the target instance."""
    reads = _Reads(config, target)
    return _grants(config, target, ram, reads) + reads.unusable_finding()


def _grants(config: Config, target: Target, ram: RamReader | None, reads: _Reads) -> list[Finding]:
    src, name = config.source, target.name
    if target.account_id == src.account_id:
        return []                                   # same account: ACR needs no cross-account role
    if ram is None or not target.reader_role_arn:
        return [finding(
            "READER_ROLE_NOT_CONFIGURED", name,
            f"target {name} has no reader_role_arn, so acrsync cannot read account {target.account_id}'s RAM "
            f"and cannot tell whether {P.SYNC_ROLE_NAME} lets ACR sync into {target.instance_id}. Sync "
            "tasks are still attempted; a missing grant shows up later as an ERROR task. Create a "
            "read-only role in the target account and set targets[].reader_role_arn",
            fix=fixes.reader_fix(config, target))]
    try:
        return _check_grants(config, target, ram, reads)
    except _Stop as s:
        return [s.finding]
    except _ReaderUnusable:
        reads.prevented(GRANT_CHECKS)
        return []


def _check_grants(config: Config, target: Target, ram: RamReader, reads: _Reads) -> list[Finding]:
    src, name = config.source, target.name
    role = reads.via_reader(f"read the role {P.SYNC_ROLE_NAME}", "ram:GetRole", ram.get_role,
                            P.SYNC_ROLE_NAME)
    if role is None:
        return [_role_missing(config, target, ram, reads)]

    out: list[Finding] = []
    trust_source = f"trust policy of role {role.name}"
    try:
        trust = P.evaluate_trust(role.trust_policy, src.account_id, target.account_id, trust_source)
    except P.PolicyError as e:
        out.append(finding("POLICY_MALFORMED", name, f"{e}; replace it with the trust policy below",
                           evidence=[Evidence(source=trust_source, detail=role.trust_policy)],
                           fix=fixes.trust_fix(src, target)))
        trust = None
    if trust is not None:
        out.extend(_trust_findings(config, target, trust, role))

    refs = reads.via_reader(f"list the policies of {role.name}", "ram:ListPoliciesForRole",
                            ram.list_policies_for_role, role.name)
    attached = _Attached()
    for ref in refs:
        pname = PolicyName(name=ref.name, type=ref.type)
        info = reads.via_reader(f"read {pname.label}", "ram:GetPolicy", ram.get_policy, ref.name, ref.type)
        if info is None:
            out.append(finding("POLICY_UNREADABLE", name,
                               f"{pname.label} is attached to {role.name} but GetPolicy found no document; "
                               "it is left out of the evaluation",
                               evidence=[Evidence(source=pname.label, policy=pname)]))
            continue
        try:
            attached.add(pname, P.parse_policy(info.document, pname.label))
        except P.PolicyError as e:
            out.append(finding("POLICY_MALFORMED", name, f"{e}; it is left out of the evaluation",
                               severity="warning",
                               evidence=[Evidence(source=pname.label, detail=info.document, policy=pname)]))
    gaps = [g for a in P.SYNC_ACTIONS if (g := _action_gap(config, target, attached, a, bool(refs)))]
    out.extend(_gap_finding(target, group) for group in _group_gaps(gaps))
    return out


class _Attached:
    """The parsed policies attached to the sync role, each with its name and type kept as data."""

    def __init__(self) -> None:
        self.policies: list[P.Policy] = []
        self.names: dict[str, PolicyName] = {}          # P.Policy.name (its label) -> the policy

    def add(self, pname: PolicyName, parsed: P.Policy) -> None:
        self.policies.append(parsed)
        self.names[parsed.name] = pname

    def evidence(self, e: P.Evidence) -> Evidence:
        return Evidence(source=e.policy, statement=e.statement, detail=e.text,
                        policy=self.names.get(e.policy))

    def has(self, policy_name: str) -> bool:
        return any(p.name == policy_name for p in self.names.values())


@dataclass(frozen=True)
class _Gap(Frozen):
    """Why one sync action is not granted on the target, as data; worded once per group of actions."""

    code: str
    action: str
    evidence: tuple[Evidence, ...]
    cause: str                       # what the message says after the action(s); equal causes merge
    fix: Fix | None = None
    deny_policy: PolicyName | None = None   # DENIED_BY_STATEMENT: the policy holding the Deny
    deny_statement: str = ""                # DENIED_BY_STATEMENT: "<policy label> statement <n>"


def _group_gaps(gaps: list[_Gap]) -> list[list[_Gap]]:
    """One group per (code, evidence, cause): both actions failing the same way become one finding."""
    groups: dict[tuple[str, tuple[Evidence, ...], str, str], list[_Gap]] = {}
    for g in gaps:
        groups.setdefault((g.code, g.evidence, g.cause, g.deny_statement), []).append(g)
    return list(groups.values())


def _gap_finding(target: Target, group: list[_Gap]) -> Finding:
    first = group[0]
    actions = " and ".join(g.action for g in group)
    verb = "are" if len(group) > 1 else "is"
    fix: Fix | None
    if first.code == "DENIED_BY_STATEMENT" and first.deny_policy is not None:
        message = f"{first.deny_statement} denies {actions} {first.cause}"
        pol = first.deny_policy
        fix = fixes.deny_fix(pol.label, pol.name, pol.type, actions, target)
    elif first.code == "CONDITION_UNKNOWN":
        message = f"{actions} on {target.instance_id} {first.cause}"
        fix = first.fix
    elif first.code == "RESOURCE_MISMATCH":
        message = f"{actions} {verb} allowed, but not on the target instance {first.cause}"
        fix = first.fix
    else:
        message = f"{P.SYNC_ROLE_NAME} may not {actions} on {target.instance_id}: {first.cause}"
        fix = first.fix
    return finding(first.code, target.name, message, evidence=list(first.evidence), fix=fix)


def _role_missing(config: Config, target: Target, ram: RamReader, reads: _Reads) -> Finding:
    """The sync role is not there: is a near-miss spelling of it there instead?

    GetRole on the likeliest misspellings needs only the ram:GetRole the reader already uses, so the
    commonest mistake is found without ram:ListRoles; ListRoles, when allowed, finds rarer near misses.
    """
    name = target.name
    found = [reads.via_reader(f"read the role {n}", "ram:GetRole", ram.get_role, n)
             for n in P.likely_misspellings()]
    near = list(dict.fromkeys(r.name for r in found if r is not None))
    unseen = ""
    if not near:
        try:
            roles = reads.via_reader("list roles", "ram:ListRoles", ram.list_roles)
        except _Stop as s:
            roles, unseen = [], f" (other near-miss names were not looked for: {s.finding.message})"
        near = P.near_miss_role_names([r.name for r in roles])
    fix = fixes.role_fix(config.source, target)
    if near:
        return finding(
            "ROLE_NAME_MISSPELT", name,
            f"account {target.account_id} has the role {near[0]!r} but ACR looks up exactly "
            f"{P.SYNC_ROLE_NAME!r} (sic: 'accout', the name ACR requires). Create the role with that exact "
            "name; the near-miss role is never used",
            evidence=[Evidence(source=f"role {n}", detail="near-miss role name") for n in near], fix=fix)
    return finding("ROLE_MISSING", name,
                   f"account {target.account_id} has no role {P.SYNC_ROLE_NAME}: ACR cannot assume it, "
                   f"so every cross-account sync into {target.instance_id} ends in ERROR{unseen}",
                   evidence=[Evidence(source=f"GetRole {P.SYNC_ROLE_NAME}", detail="EntityNotExist.Role")],
                   fix=fix)


def _ev(e: P.Evidence) -> Evidence:
    return Evidence(source=e.policy, statement=e.statement, detail=e.text)


def _trust_findings(config: Config, target: Target, trust: P.TrustVerdict, role: RoleInfo) -> list[Finding]:
    src, name = config.source, target.name
    out = []
    if trust.decision == "implicit_deny":
        merged = _merged_trust(role.trust_policy, src)
        out.append(finding(
            "TRUST_MISSING_PRINCIPAL", name,
            f"the trust policy of {role.name} does not let {trust.principal} assume it; add that service "
            "principal to an Allow statement for sts:AssumeRole",
            evidence=[Evidence(source=f"trust policy of role {role.name}", detail=role.trust_policy)],
            fix=fixes.trust_fix(src, target, merged)))
    elif trust.decision == "denied":
        st = trust.evidence[0]
        out.append(finding(
            "DENIED_BY_STATEMENT", name,
            f"statement {st.statement} of the trust policy of {role.name} denies sts:AssumeRole to "
            f"{trust.principal}; remove that Deny", evidence=[_ev(e) for e in trust.evidence],
            fix=fixes.trust_fix(src, target)))
    elif trust.decision == "unknown":
        out.append(finding(
            "CONDITION_UNKNOWN", name,
            f"the trust policy of {role.name} lets {trust.principal} assume it only under conditions "
            f"acrsync cannot evaluate: {'; '.join(trust.conditions)}, so the trust is not proven. Make sure "
            "ACR's requests meet them, or drop the condition", evidence=[_ev(e) for e in trust.evidence]))
    for w in trust.warnings:
        out.append(finding(
            "TRUST_TOO_WIDE", name,
            f"the trust policy of {role.name} also trusts {w.principal}: {w.reason}. Any principal that "
            f"can assume this role may start syncs into {target.instance_id}; remove it",
            evidence=[_ev(w.evidence)], fix=fixes.narrow_trust_fix(src, target)))
    return out


def _merged_trust(current: str, source: Source) -> Json:
    """The current trust policy with our statement added, so other trusted principals keep working."""
    ours = fixes.trust_policy(source)
    try:
        doc = json.loads(current)
        statements = doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]]
    except (ValueError, KeyError, TypeError):
        return ours
    return {"Version": "1", "Statement": [*statements, *ours["Statement"]]}


def _action_gap(config: Config, target: Target, attached: _Attached, action: str,
                any_attached: bool) -> _Gap | None:
    src = config.source
    forms = P.target_resources(target.region, target.account_id, target.instance_id)
    v = P.evaluate_any(attached.policies, action, forms)
    fix = fixes.policy_fix(src, target, exists=attached.has(fixes.sync_policy_name(target)))
    if v.decision == "allowed":
        return None
    evidence = tuple(attached.evidence(e) for e in v.evidence)
    if v.decision == "denied":
        st = v.evidence[0]
        cause = (f"on {v.resource}; an explicit Deny wins over every Allow, so remove or narrow that "
                 "statement (acrsync does not edit other policies)")
        return _Gap("DENIED_BY_STATEMENT", action, evidence, cause, deny_policy=attached.names[st.policy],
                    deny_statement=f"{st.policy} statement {st.statement}")
    if v.decision == "unknown":
        return _Gap("CONDITION_UNKNOWN", action, evidence,
                    f"depends on conditions acrsync cannot evaluate: {'; '.join(v.conditions)}. ACR's "
                    "request may or may not meet them, so the grant is not proven; grant it without a "
                    "condition to be sure", fix)
    elsewhere = P.allows_action_elsewhere(attached.policies, action)
    if elsewhere:
        hints = [_mismatch_hint(e, target) for e in elsewhere]
        return _Gap("RESOURCE_MISMATCH", action, tuple(attached.evidence(e) for e in elsewhere),
                    f"{forms[0]}: " + "; ".join(hints), fix)
    why = "no policy is attached to it" if not any_attached else "no attached policy allows it"
    return _Gap("ACTION_NOT_ALLOWED", action,
                tuple(Evidence(source=p.name, policy=attached.names.get(p.name)) for p in attached.policies),
                why, fix)


_ARN = re.compile(r"acs:cr:(?P<region>[^:]*):(?P<account>[^:]*):(?P<kind>instance|repository)/(?P<id>[^/]*)")


def _mismatch_hint(e: P.Evidence, target: Target) -> str:
    """Say which part of the granted resource differs from the target: region, account or instance."""
    try:
        st = json.loads(e.text)
    except ValueError:
        st = {}
    res = st.get("Resource", st.get("NotResource", []))
    res = [res] if isinstance(res, str) else list(res or [])
    diffs: list[str] = []
    for r in res:
        m = _ARN.match(r)
        if not m:
            continue
        for part, want in (("region", target.region), ("account", target.account_id),
                           ("id", target.instance_id)):
            got = m.group(part)
            if not fnmatchcase(want, got.replace("[", "[[]")):
                label = "instance" if part == "id" else part
                diffs.append(f"{label} {got} instead of {want}")
    detail = ", ".join(dict.fromkeys(diffs)) or "the resource does not cover it"
    return f"{e.policy} statement {e.statement} grants it on {', '.join(res) or '(no resource)'} ({detail})"


# ---- prerequisites --------------------------------------------------------------------------------

def check_prerequisites(config: Config, target: Target, *, source_acr: AcrReader,
                        target_acr: AcrReader | None) -> list[Finding]:
    """Editions, the region rule, and the target namespaces/repositories the sync lands in."""
    reads = _Reads(config, target)
    return _prerequisites(config, target, source_acr, target_acr, reads) + reads.unusable_finding()


def _prerequisites(config: Config, target: Target, source_acr: AcrReader, target_acr: AcrReader | None,
                   reads: _Reads) -> list[Finding]:
    src, name = config.source, target.name
    out: list[Finding] = []
    if not replication_allowed(src.region, target.region):
        out.append(finding("REGION_NOT_ALLOWED", name,
                           f"{src.region} is a public region and {target.region} a Finance/Gov region: "
                           f"\"{PUBLIC_TO_RESTRICTED_RULE}\" Choose a target instance in a public region"))
    out.extend(_source_edition(config, target, source_acr))
    if target_acr is not None:
        out.extend(_target(config, target, source_acr, target_acr, reads))
    return out


def _target(config: Config, target: Target, source_acr: AcrReader, target_acr: AcrReader,
            reads: _Reads) -> list[Finding]:
    cross = target.account_id != config.source.account_id
    try:
        return _target_side(config, target, source_acr, target_acr, reads, cross)
    except _Stop as s:
        return [s.finding]
    except _ReaderUnusable:
        reads.prevented(TARGET_SIDE_CHECKS)
        return []


def _source_edition(config: Config, target: Target, acr: AcrReader) -> list[Finding]:
    src, name = config.source, target.name
    try:
        inst = acr.get_instance(src.instance_id)
    except CloudError as e:
        gone = isinstance(e, NotFound) and e.service == "cr"     # the instance, not some other thing
        why = ("does not exist in this account and region" if gone else
               "cannot be read: the function role lacks cr:GetInstance" if isinstance(e, AccessDenied) else
               f"cannot be read ({e})")
        hint = "check source.instance_id and source.region" if isinstance(e, NotFound) else \
            "check the credentials, the endpoint and the network"      # a key or network problem, not the id
        return [finding("SOURCE_INSTANCE_UNREADABLE", name, f"the source instance {src.instance_id} "
                        f"({src.region}) {why}; {hint}",
                        evidence=[Evidence(source=f"GetInstance {src.instance_id}", detail=str(e))])]
    ev = [Evidence(source=f"GetInstance {src.instance_id}", detail=f"InstanceSpecification={inst.edition}")]
    if inst.edition in SOURCE_EDITIONS:
        return []
    fix = Fix(summary=f"upgrade {src.instance_id} to Advanced Edition (console: Instances > the instance "
                      "card > Upgrade)")
    note = f" ({EDITION_DISAGREEMENT})" if inst.edition == DISPUTED_EDITION else ""
    return [finding("SOURCE_EDITION", name,
                    f"the source instance {src.instance_id} is {inst.edition}; replication needs an Advanced "
                    f"Edition source{note}", evidence=ev, fix=fix)]


def _target_side(config: Config, target: Target, source_acr: AcrReader, target_acr: AcrReader,
                 reads: _Reads, cross: bool) -> list[Finding]:
    src, name = config.source, target.name
    read = reads.via_reader if cross else _direct
    out: list[Finding] = []
    try:
        inst = read(f"read the target instance {target.instance_id}", "cr:GetInstance",
                    target_acr.get_instance, target.instance_id)
    except NotFound as e:
        if e.service != "cr":
            raise
        raise _Stop(_target_unreadable(target, str(e))) from None
    ev = [Evidence(source=f"GetInstance {target.instance_id}",
                   detail=f"InstanceSpecification={inst.edition}")]
    if inst.edition not in TARGET_EDITIONS:
        note = f" ({EDITION_DISAGREEMENT})" if inst.edition == DISPUTED_EDITION else ""
        out.append(finding("TARGET_EDITION", name,
                           f"the target instance {target.instance_id} is {inst.edition}; the target must be "
                           f"Basic or Advanced Edition{note}", evidence=ev))

    if target.namespaces and not target.repositories:
        for ns in _namespaces(target, src.instance_id, source_acr):
            out.extend(_namespace_findings(target, ns, target_acr, read))
    elif target.repositories:
        for path in target.repositories:
            if _is_glob(path):
                continue
            ns, repo = path.split("/", 1)
            out.extend(_repo_findings(config, target, ns, repo, source_acr, target_acr, read))
    return out


class _Read(Protocol):
    """A read in account B: ``ReaderReads.via_reader`` (through the reader role) or ``_direct``."""

    def __call__(self, what: str, ram_action: str, fn: Callable[..., T], *args: Any) -> T: ...


def _direct(what: str, ram_action: str, fn: Callable[..., T], *args: Any) -> T:
    return fn(*args)


def _target_unreadable(target: Target, detail: str) -> Finding:
    return finding("TARGET_INSTANCE_UNREADABLE", target.name,
                   f"the target instance {target.instance_id} was not found in {target.region} of account "
                   f"{target.account_id}; check targets.{target.name}.instance_id and region",
                   evidence=[Evidence(source=f"GetInstance {target.instance_id}", detail=detail)])


def _is_glob(s: str) -> bool:
    return any(c in s for c in "*?[")


def _namespaces(target: Target, source_instance: str, source_acr: AcrReader) -> Iterable[str]:
    """Literal namespace names as given; globs expanded against the source's namespaces."""
    literal = [n for n in target.namespaces if not _is_glob(n)]
    globs = [n for n in target.namespaces if _is_glob(n)]
    names = list(literal)
    if globs:
        for ns in source_acr.list_namespaces(source_instance):
            if any(fnmatchcase(ns.name, g) for g in globs) and ns.name not in names:
                names.append(ns.name)
    return names


def _namespace_findings(target: Target, ns: str, acr: AcrReader, read: _Read) -> list[Finding]:
    tns = target.target_namespace or ns
    got = read(f"read namespace {tns} of the target", "cr:GetNamespace", acr.get_namespace,
               target.instance_id, tns)
    where = f"{target.instance_id}/{tns}"
    if got is None:
        return [finding(
            "TARGET_NAMESPACE_MISSING", target.name,
            f"namespace-level sync of {ns!r} needs the namespace {tns!r} on the target instance, with "
            "automatic repository creation on; it does not exist",
            evidence=[Evidence(source=f"GetNamespace {where}", detail="not found")],
            fix=fixes.namespace_missing_fix(target, tns))]
    if not got.auto_create_repo:
        return [finding(
            "TARGET_NAMESPACE_NO_AUTOCREATE", target.name,
            f"namespace {tns!r} on the target has automatic repository creation off, so images of "
            "repositories that do not exist there yet cannot land; turn AutoCreateRepo on",
            evidence=[Evidence(source=f"GetNamespace {where}", detail="AutoCreateRepo=false")],
            fix=fixes.namespace_autocreate_fix(target, tns, got.default_repo_type))]
    return []


def _repo_findings(config: Config, target: Target, ns: str, repo: str, source_acr: AcrReader,
                   target_acr: AcrReader, read: _Read) -> list[Finding]:
    src = config.source
    tns = target.target_namespace or ns
    source_repo = source_acr.get_repository(src.instance_id, ns, repo)
    if source_repo is None:
        return [finding("SOURCE_REPO_MISSING", target.name,
                        f"repositories lists {ns}/{repo} but the source instance has no such repository; "
                        "fix the name or create it",
                        evidence=[Evidence(source=f"GetRepository {src.instance_id}/{ns}/{repo}",
                                           detail="not found")])]
    got = read(f"read repository {tns}/{repo} of the target", "cr:GetRepository", target_acr.get_repository,
               target.instance_id, tns, repo)
    rtype = source_repo.type
    immut = "true" if source_repo.tag_immutability else "false"
    if got is None:
        return [finding(
            "TARGET_REPO_MISSING", target.name,
            f"repository-level sync of {ns}/{repo} needs {tns}/{repo} on the target instance with the same "
            f"settings (type {rtype}, tag immutability {immut}); it does not exist",
            evidence=[Evidence(source=f"GetRepository {target.instance_id}/{tns}/{repo}",
                               detail="not found")],
            fix=Fix(summary=f"create {tns}/{repo} in {target.instance_id} as {rtype} with tag immutability "
                            f"{immut}",
                    commands=[f"aliyun cr CreateRepository --InstanceId {target.instance_id} "
                              f"--RepoNamespaceName {tns} --RepoName {repo} --RepoType {rtype} "
                              f"--TagImmutability {immut} --Summary 'replica of {ns}/{repo}'"]))]
    diffs = []
    if got.type != source_repo.type:
        diffs.append(f"type {got.type} (source {source_repo.type})")
    if got.tag_immutability != source_repo.tag_immutability:
        diffs.append(f"tag immutability {str(got.tag_immutability).lower()} (source {immut})")
    if diffs:
        return [finding(
            "TARGET_REPO_SETTINGS_DIFFER", target.name,
            f"{tns}/{repo} on the target differs from the source: {', '.join(diffs)}; repository-level sync "
            "needs the same configuration on both sides",
            evidence=[Evidence(source=f"GetRepository {target.instance_id}/{tns}/{repo}",
                               detail="; ".join(diffs))],
            fix=Fix(summary=f"set {tns}/{repo} on the target to type {rtype}, tag immutability {immut}",
                    commands=[f"aliyun cr UpdateRepository --InstanceId {target.instance_id} "
                              f"--RepoId {got.repo_id} --RepoType {rtype} --TagImmutability {immut} "
                              f"--Summary 'replica of {ns}/{repo}'"]))]
    return []


# ---- both -----------------------------------------------------------------------------------------

def check_target(config: Config, target: Target, *, ram: RamReader | None, source_acr: AcrReader,
                 target_acr: AcrReader | None) -> list[Finding]:
    """Every grant and prerequisite finding for one target, blocking ones first.

    A reader role that cannot be assumed gives one READER_ROLE_CANNOT_READ listing every check it kept
    from running, and nothing else about account B (no guess that a role there is missing).
    """
    reads = _Reads(config, target)
    try:
        found = _prerequisites(config, target, source_acr, target_acr, reads)
        found += _grants(config, target, ram, reads)
        found += reads.unusable_finding()
    except CloudError as e:
        found = [finding("CHECK_FAILED", target.name,
                         f"the check could not finish: {e}. Run it again; if it persists, check the "
                         "credentials, endpoint and network",
                         evidence=[Evidence(source=f"{e.service}:{e.action}", detail=str(e))])]
    order = {"error": 0, "warning": 1, "info": 2}
    return sorted(found, key=lambda f: (not f.blocks, order[f.severity]))


def check_with_session(config: Config, target: Target, session: Session) -> list[Finding]:
    """``check_target`` under ``session`` (a CloudSession): account B is read through the target's reader
    role, the source instance with the session's own keys (the function role in account A)."""
    source_acr = session.acr(config.source.region)
    cross = target.account_id != config.source.account_id
    if cross and not target.reader_role_arn:
        ram, target_acr = None, None
    elif cross:
        ram = session.ram(role_arn=target.reader_role_arn)
        target_acr = session.acr(target.region, role_arn=target.reader_role_arn)
    else:
        ram, target_acr = None, session.acr(target.region)
    return check_target(config, target, ram=ram, source_acr=source_acr, target_acr=target_acr)


def session_checker(session: Session, config: Config) -> Callable[[Target], list[Finding]]:
    """``check_with_session`` bound to one session (the CLI's, which lives as long as the command)."""

    def check(target: Target) -> list[Finding]:
        return check_with_session(config, target, session)

    return check

"""The replication config: which source instance replicates what into which targets.

Loaded from the YAML file named by ``ACRSYNC_CONFIG`` (or a path given to the CLI). Every validation
error names the field and says how to fix it, because a wrong config should fail at load time, not
later as a failed sync task.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

from acrsync import __version__, codec
from acrsync.errors import AcrsyncError
from acrsync.regions import KNOWN_REGIONS, PUBLIC_TO_RESTRICTED_RULE, replication_allowed
from acrsync.value import Frozen, dataclass

CONFIG_ENV = "ACRSYNC_CONFIG"
OTS_ENDPOINT_ENV = "ACRSYNC_OTS_ENDPOINT"
OTS_INSTANCE_ENV = "ACRSYNC_OTS_INSTANCE"
# The region s.yaml deploys the functions to (vars.region); see region_mismatches.
DEPLOY_REGION_ENV = "ACRSYNC_REGION"


class ConfigError(AcrsyncError, ValueError):
    """A config that cannot be used; ``problems`` holds one ``field: what is wrong; fix`` line each."""

    def __init__(self, problems: list[str], source: str = "config"):
        self.problems = problems
        self.source = source
        super().__init__(f"{source} is not valid:\n" + "\n".join(f"  - {p}" for p in problems))


class Check:
    """A field's own check, as ``Annotated`` metadata: pydantic runs it when it validates a config (and
    reports the field's path with the message); reading a validated config (``acrsync.codec``) does not.
    Defining it costs no pydantic import: pydantic asks for the schema only when it validates."""

    def __init__(self, fn: Callable[[Any], Any], *, before: bool = False):
        self.fn = fn
        self.before = before

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        if self.before:
            return core_schema.no_info_before_validator_function(self.fn, handler(source))
        return core_schema.no_info_after_validator_function(self.fn, handler(source))


class Range:
    """A number's bounds, as ``Annotated`` metadata checked when pydantic validates a config."""

    def __init__(self, *, ge: float | None = None, gt: float | None = None, le: float | None = None):
        self.ge, self.gt, self.le = ge, gt, le

    def check(self, v: Any) -> Any:
        if (self.ge is not None and v < self.ge) or (self.gt is not None and v <= self.gt) or \
                (self.le is not None and v > self.le):
            raise ValueError(f"{v!r} is out of range; use a number {self.describe()}")
        return v

    def describe(self) -> str:
        low = f">= {self.ge:g}" if self.ge is not None else f"> {self.gt:g}" if self.gt is not None else ""
        high = f"<= {self.le:g}" if self.le is not None else ""
        return " and ".join(p for p in (low, high) if p)

    def __get_pydantic_core_schema__(self, source: Any, handler: Any) -> Any:
        from pydantic_core import core_schema

        return core_schema.no_info_after_validator_function(self.check, handler(source))


def _at_least_one_target(v: list[Any]) -> list[Any]:
    if not v:
        raise ValueError("no targets; add at least one target (name, account_id, region, instance_id)")
    return v


# pydantic reads this from each config dataclass: a misspelt key is an error, not silently ignored.
_FORBID_EXTRA = {"extra": "forbid"}


def _check_account(value: Any) -> str:
    v = str(value).strip()
    if not v.isdigit():
        raise ValueError(f"{v!r} is not an Alibaba Cloud account id; use the digits-only UID of the "
                         "main account (quote it in YAML, e.g. \"1513561019701234\")")
    return v


def _check_instance(v: str) -> str:
    if not re.fullmatch(r"cri-[a-z0-9]+", v or ""):
        raise ValueError(f"{v!r} is not an ACR Enterprise Edition instance id; it looks like "
                         "\"cri-xxxxxxxx\" (console: Instances > your instance > Overview)")
    return v


def _check_region(v: str) -> str:
    if v not in KNOWN_REGIONS:
        raise ValueError(f"unknown region {v!r}; use a region id such as cn-hangzhou or cn-beijing "
                         "(the instance's Overview page shows it)")
    return v


def _check_target_name(v: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", v):
        raise ValueError(f"{v!r} is not a usable target name; use letters, digits, '.', '_' or '-' "
                         "(at most 63 characters), e.g. beijing-prod")
    return v


def _check_regex(v: str) -> str:
    try:
        re.compile(v)
    except re.error as e:
        raise ValueError(f"the regex {v!r} does not compile ({e}); it is matched against the whole "
                         "tag, e.g. '^v\\d+\\.\\d+\\.\\d+$' or 'v.*'") from None
    return v


def _check_repo_globs(v: list[str]) -> list[str]:
    for g in v:
        if g.count("/") != 1:
            raise ValueError(f"{g!r} must be a 'namespace/repo' glob, e.g. 'team-a/api' or "
                             "'team-a/tmp-*'")
    return v


def _check_role_arn(v: str | None) -> str | None:
    if v is not None and not re.fullmatch(r"acs:ram::\d+:role/[A-Za-z0-9._-]+", v):
        raise ValueError(f"{v!r} is not a RAM role ARN; it looks like "
                         "acs:ram::<account B id>:role/<role name>")
    return v


def _check_rule_prefix(v: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,30}", v):
        raise ValueError(f"{v!r} is not a usable rule name prefix; use letters, digits, '_' or '-' "
                         "(at most 31 characters), starting with a letter or digit, e.g. acrsync-")
    return v


def _check_notify(v: str | None) -> str | None:
    if v is not None and not re.fullmatch(r"https?://[^\s]+", v):
        raise ValueError(f"{v!r} is not an http(s) URL; use the robot's webhook, e.g. "
                         "https://oapi.dingtalk.com/robot/send?access_token=...&secret=SEC...")
    return v


AccountId = Annotated[str, Check(_check_account, before=True)]
InstanceId = Annotated[str, Check(_check_instance)]
RegionId = Annotated[str, Check(_check_region)]
RepoGlobs = Annotated[list[str], Check(_check_repo_globs)]


def _doc(default: Any = dataclasses.MISSING, *, factory: Callable[[], Any] | None = None,
         doc: str = "") -> Any:
    """A field with its description (for people reading the code; README.md has the reference)."""
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata={"description": doc})
    return dataclasses.field(default=default, metadata={"description": doc})


@dataclass(frozen=True, kw_only=True)
class Source(Frozen):
    __pydantic_config__ = _FORBID_EXTRA
    account_id: AccountId = _doc(doc="UID of account A, which owns the source instance")
    region: RegionId = _doc(doc="region id of the source instance")
    instance_id: InstanceId = _doc(doc="source ACR EE instance id (cri-...); must be Advanced edition")


@dataclass(frozen=True, kw_only=True)
class Target(Frozen):
    __pydantic_config__ = _FORBID_EXTRA
    name: Annotated[str, Check(_check_target_name)] = _doc(
        doc="a short unique name used in the ledger, logs and CLI")
    account_id: AccountId
    region: RegionId
    instance_id: InstanceId
    namespaces: list[str] = _doc(factory=list, doc="namespace globs; empty means all")
    repositories: RepoGlobs = _doc(factory=list,
                                   doc="'namespace/repo' globs; empty means all in the namespaces")
    exclude: RepoGlobs = _doc(factory=list, doc="'namespace/repo' globs never replicated")
    tag_filter: Annotated[str, Check(_check_regex)] = _doc(".*", doc="regex a tag must match in full")
    target_namespace: str | None = _doc(None, doc="null: same namespace name as the source")
    override: bool = _doc(False, doc="overwrite an existing tag on the target")
    priority: Annotated[int, Range(ge=1, le=5)] = _doc(3, doc="sync task priority 1-5 (higher runs first)")
    reader_role_arn: Annotated[str | None, Check(_check_role_arn)] = _doc(
        None, doc="role in account B that acrsync assumes to read RAM")
    enabled: bool = True

    def __post_init__(self) -> None:
        if self.reader_role_arn:
            acct = self.reader_role_arn.split(":")[3]
            if acct != self.account_id:
                raise ValueError(f"reader_role_arn is in account {acct} but the target is account "
                                 f"{self.account_id}; use a role that lives in the target account")

    @property
    def tag_regex(self) -> re.Pattern[str]:
        return re.compile(self.tag_filter)

    @property
    def instance_arn(self) -> str:
        return f"acs:cr:{self.region}:{self.account_id}:instance/{self.instance_id}"


@dataclass(frozen=True, kw_only=True)
class LedgerConfig(Frozen):
    __pydantic_config__ = _FORBID_EXTRA
    backend: Literal["sqlite", "tablestore"] = "sqlite"
    path: str = _doc(".acrsync/ledger.db", doc="SQLite file (backend: sqlite)")
    endpoint: str | None = _doc(None, doc="Tablestore endpoint (backend: tablestore)")
    instance: str | None = _doc(None, doc="Tablestore instance name (backend: tablestore)")
    table_prefix: str = _doc("acrsync", doc="prefix of every Tablestore table")

    def __post_init__(self) -> None:
        if self.backend == "tablestore":
            missing = [k for k in ("endpoint", "instance") if not getattr(self, k)]
            if missing:
                raise ValueError(
                    f"backend tablestore needs {' and '.join(missing)}: set ledger.endpoint to "
                    "https://<instance>.<region>.ots.aliyuncs.com (or the .vpc.tablestore.aliyuncs.com form "
                    "from inside a VPC) and ledger.instance to the Tablestore instance name")


@dataclass(frozen=True, kw_only=True)
class GrantsConfig(Frozen):
    __pydantic_config__ = _FORBID_EXTRA
    cache_ttl_seconds: Annotated[int, Range(ge=0)] = _doc(900, doc="how long a clean grant check is trusted")
    blocked_ttl_seconds: Annotated[int, Range(ge=0)] = _doc(60, doc="how soon a failing check is re-run")


@dataclass(frozen=True, kw_only=True)
class ReconcileConfig(Frozen):
    __pydantic_config__ = _FORBID_EXTRA
    max_attempts: Annotated[int, Range(ge=1)] = _doc(5, doc="sync task attempts per image and target")
    backoff_base_seconds: Annotated[float, Range(gt=0)] = 60.0
    backoff_max_seconds: Annotated[float, Range(gt=0)] = 3600.0
    stuck_after_seconds: Annotated[float, Range(gt=0)] = _doc(
        3600.0, doc="PENDING/SYNCHRONIZING longer than this is flagged stuck")
    cancel_stuck: bool = _doc(False, doc="cancel stuck tasks and retry them")
    claim_after_seconds: Annotated[float, Range(gt=0)] = _doc(
        300.0, doc="a QUEUED record without a task is left this long to the push that made it before "
                   "reconcile creates or adopts its task")
    page_size: Annotated[int, Range(ge=1, le=100)] = 100


@dataclass(frozen=True, kw_only=True)
class BackfillConfig(Frozen):
    """How politely ``acrsync backfill`` replicates existing images (docs/backfill.md)."""

    __pydantic_config__ = _FORBID_EXTRA
    qps: Annotated[float, Range(gt=0, le=1000)] = _doc(
        10.0, doc="OpenAPI calls per second, shared by every thread and invocation of a run")
    max_in_flight: Annotated[int, Range(ge=1, le=10000)] = _doc(20, doc="open backfill sync tasks per target")
    oss_threshold_bytes: Annotated[int, Range(ge=1)] = _doc(
        1 << 40, doc="above this many bytes the plan points at the OSS route")
    oss_threshold_tags: Annotated[int, Range(ge=1)] = _doc(
        100_000, doc="above this many tasks the plan points at the OSS route")
    max_failures: Annotated[float, Range(gt=0, le=1)] = _doc(
        0.5, doc="stop when this share of the finished tasks failed ...")
    max_failures_min_finished: Annotated[int, Range(ge=1)] = _doc(100, doc="... once this many have finished")
    task_seconds: Annotated[float, Range(gt=0)] = _doc(
        60.0, doc="expected seconds one sync task stays open (duration estimate)")
    poll_seconds: Annotated[float, Range(gt=0)] = _doc(
        5.0, doc="how often a run at the in-flight cap looks for finished tasks")


@dataclass(frozen=True, kw_only=True)
class RulesConfig(Frozen):
    """The rule advisor (``acrsync rules``)."""

    __pydantic_config__ = _FORBID_EXTRA
    # No public document states how many sync rules an instance may hold: a config value, not a constant.
    max_rules_per_instance: Annotated[int, Range(ge=1)] = _doc(
        100, doc="sync rules the source instance may hold (no public number)")
    name_prefix: Annotated[str, Check(_check_rule_prefix)] = _doc(
        "acrsync-", doc="prefix of the rules acrsync creates; it never touches others")


@dataclass(frozen=True, kw_only=True)
class WebhookConfig(Frozen):
    __pydantic_config__ = _FORBID_EXTRA
    token_env: str = _doc("ACRSYNC_WEBHOOK_TOKEN",
                          doc="environment variable that holds the webhook secret token")


@dataclass(frozen=True, kw_only=True)
class PipelineNames(Frozen):
    """The deployed functions and triggers the compliance run inspects (s.yaml's names by default)."""

    __pydantic_config__ = _FORBID_EXTRA
    on_push: str = "acrsync-on-push"
    reconcile: str = "acrsync-reconcile"
    compliance: str = "acrsync-compliance"
    check: Literal["auto", "always", "never"] = _doc(
        "auto", doc="auto: checked when the FC API answers, else noted as not checked")


@dataclass(frozen=True, kw_only=True)
class ComplianceConfig(Frozen):
    __pydantic_config__ = _FORBID_EXTRA
    remediate: bool = _doc(False, doc="create sync tasks for MISSING tags (and DIGEST_DIFFERS when the "
                                      "target has override: true)")
    max_tasks_per_run: Annotated[int, Range(ge=0)] = _doc(100, doc="at most this many tasks per run")
    qps: Annotated[float, Range(gt=0)] = _doc(
        10.0, doc="OpenAPI calls per second per account, shared by workers")
    workers: Annotated[int, Range(ge=1, le=64)] = _doc(8, doc="repositories compared at the same time")
    events_grace_minutes: Annotated[float, Range(ge=0)] = _doc(
        30.0, doc="in-scope tags older than this that the ledger never saw mean events are not arriving")
    notify_url: Annotated[str | None, Check(_check_notify)] = _doc(
        None, doc="DingTalk robot webhook; POSTed when the verdict changes. A secret= query parameter "
                  "signs it")
    schedule: str = _doc("0 0 * * * *", doc="the compliance timer's cron (s.yaml)")
    examples_per_repo: Annotated[int, Range(ge=0, le=1000)] = _doc(
        20, doc="tags listed per repository finding")
    functions: PipelineNames = _doc(factory=PipelineNames)


@dataclass(frozen=True, kw_only=True)
class Config(Frozen):
    __pydantic_config__ = _FORBID_EXTRA
    source: Source
    targets: Annotated[list[Target], Check(_at_least_one_target)]
    ledger: LedgerConfig = _doc(factory=LedgerConfig)
    grants: GrantsConfig = _doc(factory=GrantsConfig)
    reconcile: ReconcileConfig = _doc(factory=ReconcileConfig)
    webhook: WebhookConfig = _doc(factory=WebhookConfig)
    backfill: BackfillConfig = _doc(factory=BackfillConfig)
    rules: RulesConfig = _doc(factory=RulesConfig)
    compliance: ComplianceConfig = _doc(factory=ComplianceConfig)
    rules_cache_ttl_seconds: Annotated[int, Range(ge=0)] = _doc(
        300, doc="how long the source's sync rules are cached")

    def __post_init__(self) -> None:
        seen: set[str] = set()
        for t in self.targets:
            if t.name in seen:
                raise ValueError(f"targets: the name {t.name!r} is used twice; give each target its own name")
            seen.add(t.name)
            if not replication_allowed(self.source.region, t.region):
                raise ValueError(
                    f"targets.{t.name}.region: {t.region} is a Finance/Gov cloud region and the source "
                    f"{self.source.region} is a public region. The rule: \"{PUBLIC_TO_RESTRICTED_RULE}\" "
                    "Choose a target in a public region.")
            if t.instance_id == self.source.instance_id:
                raise ValueError(f"targets.{t.name}.instance_id: the target is the source instance; "
                                 "name a different instance")

    def target(self, name: str) -> Target:
        for t in self.targets:
            if t.name == name:
                return t
        raise KeyError(f"no target named {name!r}; configured: {', '.join(t.name for t in self.targets)}")


_MISSING_TYPES = frozenset({"missing", "missing_argument", "missing_keyword_only_argument"})
_EXTRA_TYPES = frozenset({"extra_forbidden", "unexpected_keyword_argument"})


def _format(errors: list[Any]) -> list[str]:
    out = []
    for err in errors:
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if err["type"] in _EXTRA_TYPES:
            msg = "unknown key; check the spelling against the config reference in README.md"
        elif err["type"] in _MISSING_TYPES:
            msg = "required key is missing"
        out.append(f"{loc}: {msg}" if loc else msg)
    return out


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    """pydantic's validator for ``Config``, built on first use: only what validates a file pays for it."""
    from pydantic import TypeAdapter

    return TypeAdapter(Config)


def parse_config(data: Any, source: str = "config") -> Config:
    """Validate a mapping; raise ConfigError with one line per problem."""
    from pydantic import ValidationError

    if not isinstance(data, dict):
        raise ConfigError(["the file must hold a YAML mapping with 'source' and 'targets'"], source)
    try:
        config: Config = _validator().validate_python(data)
    except ValidationError as e:
        raise ConfigError(_format(e.errors()), source) from None
    return config


def validated_path(path: Path) -> Path:
    """Where ``make package`` puts the validated form of the config file ``path`` (see ``load_config``)."""
    return path.with_name(path.stem + ".validated.json")


def write_validated(config: Config, path: Path) -> Path:
    """Record that ``path``'s exact bytes validate to ``config``: the function then reads the config
    without YAML or pydantic (``load_config``). Keyed by the file's sha256 and acrsync's version, so an
    edited file, or another acrsync, validates again."""
    out = validated_path(path)
    doc = {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(), "acrsync": __version__,
           "config": codec.dump(config)}
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return out


def _read_validated(path: Path, raw: bytes) -> Config | None:
    side = validated_path(path)
    try:
        doc = json.loads(side.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("acrsync") != __version__ or \
            doc.get("sha256") != hashlib.sha256(raw).hexdigest():
        return None
    try:
        return codec.load(Config, doc.get("config"))
    except (codec.CodecError, ValueError):
        return None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load from ``path`` or from the file named by ``ACRSYNC_CONFIG``.

    A file with a matching validated form beside it (``write_validated``; ``make package`` writes one) is
    read from that form: no YAML parser, no pydantic, which keeps them out of a function's cold start.
    """
    p = path or os.environ.get(CONFIG_ENV)
    if not p:
        raise ConfigError([f"no config file: pass --config PATH or set {CONFIG_ENV}=PATH"])
    p = Path(p)
    try:
        raw = p.read_bytes()
    except OSError as e:
        raise ConfigError([f"cannot read {p}: {e.strerror}"], str(p)) from None
    validated = _read_validated(p, raw)
    if validated is not None:
        return validated
    import yaml

    try:
        data = yaml.safe_load(raw.decode("utf-8"))
    except UnicodeDecodeError as e:
        raise ConfigError([f"not UTF-8 text: {e}"], str(p)) from None
    except yaml.YAMLError as e:
        raise ConfigError([f"not valid YAML: {e}"], str(p)) from None
    return parse_config(data, str(p))


_OTS_HOST = re.compile(r"[^.]+\.(?P<region>[a-z0-9-]+)\."
                       r"(?:ots\.aliyuncs\.com|vpc\.tablestore\.aliyuncs\.com)")


def ledger_region(config: Config) -> str | None:
    """The region in a Tablestore endpoint of the documented forms; None for other endpoints (an emulator)."""
    if config.ledger.backend != "tablestore" or not config.ledger.endpoint:
        return None
    host = re.sub(r"^[a-z]+://", "", config.ledger.endpoint).split("/")[0].split(":")[0]
    m = _OTS_HOST.fullmatch(host)
    return m.group("region") if m else None


def region_mismatches(config: Config, deploy_region: str | None = None) -> list[str]:
    """Regions that must be one and are not. The functions subscribe to the source instance's events on the
    default EventBridge bus of their own region, and reach the ledger's Tablestore instance in that region,
    so the source, the functions (s.yaml vars.region) and Tablestore share one region."""
    src = config.source.region
    out = []
    if deploy_region and deploy_region != src:
        out.append(f"s.yaml vars.region (ACRSYNC_REGION) is {deploy_region} but source.region in the config "
                   f"is {src}; deploy the functions to {src} (export ACRSYNC_REGION={src}) or fix "
                   "source.region")
    ots = ledger_region(config)
    if ots and ots != src:
        out.append(f"ledger.endpoint is in region {ots} but source.region is {src}; use the Tablestore "
                   f"instance in {src} (https://<instance>.{src}.ots.aliyuncs.com)")
    return out


def with_env_overrides(config: Config, env: Mapping[str, str] | None = None) -> Config:
    """s.yaml passes the Tablestore endpoint/instance as variables; they win over the packaged file. The
    region s.yaml deployed to (ACRSYNC_REGION) must be the config's: a mismatch is refused."""
    env = os.environ if env is None else env
    endpoint, instance = env.get(OTS_ENDPOINT_ENV), env.get(OTS_INSTANCE_ENV)
    if config.ledger.backend == "tablestore" and (endpoint or instance):
        ledger = dataclasses.replace(config.ledger, endpoint=endpoint or config.ledger.endpoint,
                                     instance=instance or config.ledger.instance)
        config = dataclasses.replace(config, ledger=ledger)
    problems = region_mismatches(config, env.get(DEPLOY_REGION_ENV) or None)
    if problems:
        raise ConfigError(problems, "environment")
    return config

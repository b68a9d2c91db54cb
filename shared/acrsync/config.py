"""The replication config: which source instance replicates what into which targets.

Loaded from the YAML file named by ``ACRSYNC_CONFIG`` (or a path given to the CLI). Every validation
error names the field and says how to fix it, because a wrong config should fail at load time, not
later as a failed sync task.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from acrsync.errors import AcrsyncError
from acrsync.regions import KNOWN_REGIONS, PUBLIC_TO_RESTRICTED_RULE, replication_allowed

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


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_account(v: str) -> str:
    v = str(v).strip()
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


class Source(_Strict):
    account_id: str = Field(description="UID of account A, which owns the source instance")
    region: str = Field(description="region id of the source instance")
    instance_id: str = Field(description="source ACR EE instance id (cri-...); must be Advanced edition")

    _account = field_validator("account_id", mode="before")(lambda v: _check_account(v))
    _instance = field_validator("instance_id")(lambda v: _check_instance(v))
    _region = field_validator("region")(lambda v: _check_region(v))


class Target(_Strict):
    name: str = Field(description="a short unique name used in the ledger, logs and CLI")
    account_id: str
    region: str
    instance_id: str
    namespaces: list[str] = Field(default_factory=list, description="namespace globs; empty means all")
    repositories: list[str] = Field(default_factory=list,
                                    description="'namespace/repo' globs; empty means all in the namespaces")
    exclude: list[str] = Field(default_factory=list, description="'namespace/repo' globs never replicated")
    tag_filter: str = Field(default=".*", description="regex a tag must match in full")
    target_namespace: str | None = Field(default=None, description="null: same namespace name as the source")
    override: bool = Field(default=False, description="overwrite an existing tag on the target")
    priority: int = Field(default=3, ge=1, le=5, description="sync task priority 1-5 (higher runs first)")
    reader_role_arn: str | None = Field(default=None,
                                        description="role in account B that acrsync assumes to read RAM")
    enabled: bool = True

    _account = field_validator("account_id", mode="before")(lambda v: _check_account(v))
    _instance = field_validator("instance_id")(lambda v: _check_instance(v))
    _region = field_validator("region")(lambda v: _check_region(v))

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", v):
            raise ValueError(f"{v!r} is not a usable target name; use letters, digits, '.', '_' or '-' "
                             "(at most 63 characters), e.g. beijing-prod")
        return v

    @field_validator("tag_filter")
    @classmethod
    def _regex(cls, v: str) -> str:
        try:
            re.compile(v)
        except re.error as e:
            raise ValueError(f"the regex {v!r} does not compile ({e}); it is matched against the whole "
                             "tag, e.g. '^v\\d+\\.\\d+\\.\\d+$' or 'v.*'") from None
        return v

    @field_validator("repositories", "exclude")
    @classmethod
    def _repo_globs(cls, v: list[str]) -> list[str]:
        for g in v:
            if g.count("/") != 1:
                raise ValueError(f"{g!r} must be a 'namespace/repo' glob, e.g. 'team-a/api' or "
                                 "'team-a/tmp-*'")
        return v

    @field_validator("reader_role_arn")
    @classmethod
    def _role_arn(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"acs:ram::\d+:role/[A-Za-z0-9._-]+", v):
            raise ValueError(f"{v!r} is not a RAM role ARN; it looks like "
                             "acs:ram::<account B id>:role/<role name>")
        return v

    @model_validator(mode="after")
    def _reader_in_target_account(self) -> Target:
        if self.reader_role_arn:
            acct = self.reader_role_arn.split(":")[3]
            if acct != self.account_id:
                raise ValueError(f"reader_role_arn is in account {acct} but the target is account "
                                 f"{self.account_id}; use a role that lives in the target account")
        return self

    @property
    def tag_regex(self) -> re.Pattern[str]:
        return re.compile(self.tag_filter)

    @property
    def instance_arn(self) -> str:
        return f"acs:cr:{self.region}:{self.account_id}:instance/{self.instance_id}"


class LedgerConfig(_Strict):
    backend: Literal["sqlite", "tablestore"] = "sqlite"
    path: str = Field(default=".acrsync/ledger.db", description="SQLite file (backend: sqlite)")
    endpoint: str | None = Field(default=None, description="Tablestore endpoint (backend: tablestore)")
    instance: str | None = Field(default=None, description="Tablestore instance name (backend: tablestore)")
    table_prefix: str = Field(default="acrsync", description="prefix of every Tablestore table")

    @model_validator(mode="after")
    def _tablestore_needs(self) -> LedgerConfig:
        if self.backend == "tablestore":
            missing = [k for k in ("endpoint", "instance") if not getattr(self, k)]
            if missing:
                raise ValueError(
                    f"backend tablestore needs {' and '.join(missing)}: set ledger.endpoint to "
                    "https://<instance>.<region>.ots.aliyuncs.com (or the .vpc.tablestore.aliyuncs.com form "
                    "from inside a VPC) and ledger.instance to the Tablestore instance name")
        return self


class GrantsConfig(_Strict):
    cache_ttl_seconds: int = Field(default=900, ge=0, description="how long a clean grant check is trusted")
    blocked_ttl_seconds: int = Field(default=60, ge=0, description="how soon a failing check is re-run")


class ReconcileConfig(_Strict):
    max_attempts: int = Field(default=5, ge=1, description="sync task attempts per image and target")
    backoff_base_seconds: float = Field(default=60, gt=0)
    backoff_max_seconds: float = Field(default=3600, gt=0)
    stuck_after_seconds: float = Field(default=3600, gt=0,
                                       description="PENDING/SYNCHRONIZING longer than this is flagged stuck")
    cancel_stuck: bool = Field(default=False, description="cancel stuck tasks and retry them")
    claim_after_seconds: float = Field(
        default=300, gt=0, description="a QUEUED record without a task is left this long to the push that "
                                       "made it before reconcile creates or adopts its task")
    page_size: int = Field(default=100, ge=1, le=100)


class BackfillConfig(_Strict):
    """How politely ``acrsync backfill`` replicates existing images (docs/backfill.md)."""

    qps: float = Field(default=10.0, gt=0, le=1000,
                       description="OpenAPI calls per second, shared by every thread and invocation of a run")
    max_in_flight: int = Field(default=20, ge=1, le=10000, description="open backfill sync tasks per target")
    oss_threshold_bytes: int = Field(default=1 << 40, ge=1,
                                     description="above this many bytes the plan points at the OSS route")
    oss_threshold_tags: int = Field(default=100_000, ge=1,
                                    description="above this many tasks the plan points at the OSS route")
    max_failures: float = Field(default=0.5, gt=0, le=1,
                                description="stop when this share of the finished tasks failed ...")
    max_failures_min_finished: int = Field(default=100, ge=1, description="... once this many have finished")
    task_seconds: float = Field(default=60.0, gt=0,
                                description="expected seconds one sync task stays open (duration estimate)")
    poll_seconds: float = Field(default=5.0, gt=0,
                                description="how often a run at the in-flight cap looks for finished tasks")


class RulesConfig(_Strict):
    """The rule advisor (``acrsync rules``)."""

    # No public document states how many sync rules an instance may hold: a config value, not a constant.
    max_rules_per_instance: int = Field(default=100, ge=1,
                                        description="sync rules the source instance may hold "
                                                    "(no public number)")
    name_prefix: str = Field(default="acrsync-", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,30}$",
                             description="prefix of the rules acrsync creates; it never touches others")


class WebhookConfig(_Strict):
    token_env: str = Field(default="ACRSYNC_WEBHOOK_TOKEN",
                           description="environment variable that holds the webhook secret token")


class PipelineNames(_Strict):
    """The deployed functions and triggers the compliance run inspects (s.yaml's names by default)."""

    on_push: str = "acrsync-on-push"
    reconcile: str = "acrsync-reconcile"
    compliance: str = "acrsync-compliance"
    check: Literal["auto", "always", "never"] = Field(
        default="auto", description="auto: checked when the FC API answers, else noted as not checked")


class ComplianceConfig(_Strict):
    remediate: bool = Field(default=False, description="create sync tasks for MISSING tags (and "
                                                       "DIGEST_DIFFERS when the target has override: true)")
    max_tasks_per_run: int = Field(default=100, ge=0, description="at most this many tasks per run")
    qps: float = Field(default=10, gt=0,
                       description="OpenAPI calls per second per account, shared by workers")
    workers: int = Field(default=8, ge=1, le=64, description="repositories compared at the same time")
    events_grace_minutes: float = Field(default=30, ge=0,
                                        description="in-scope tags older than this that the ledger never saw "
                                                    "mean events are not arriving")
    notify_url: str | None = Field(default=None,
                                   description="DingTalk robot webhook; POSTed when the verdict "
                                               "changes. A secret= query parameter signs it")
    schedule: str = Field(default="0 0 * * * *", description="the compliance timer's cron (s.yaml)")
    examples_per_repo: int = Field(default=20, ge=0, le=1000,
                                   description="tags listed per repository finding")
    functions: PipelineNames = Field(default_factory=PipelineNames)

    @field_validator("notify_url")
    @classmethod
    def _notify(cls, v: str | None) -> str | None:
        if v is not None and not re.fullmatch(r"https?://[^\s]+", v):
            raise ValueError(f"{v!r} is not an http(s) URL; use the robot's webhook, e.g. "
                             "https://oapi.dingtalk.com/robot/send?access_token=...&secret=SEC...")
        return v


class Config(_Strict):
    source: Source
    targets: list[Target] = Field(min_length=1)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    grants: GrantsConfig = Field(default_factory=GrantsConfig)
    reconcile: ReconcileConfig = Field(default_factory=ReconcileConfig)
    webhook: WebhookConfig = Field(default_factory=WebhookConfig)
    backfill: BackfillConfig = Field(default_factory=BackfillConfig)
    rules: RulesConfig = Field(default_factory=RulesConfig)
    compliance: ComplianceConfig = Field(default_factory=ComplianceConfig)
    rules_cache_ttl_seconds: int = Field(default=300, ge=0,
                                         description="how long the source's sync rules are cached")

    @model_validator(mode="after")
    def _cross_checks(self) -> Config:
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
        return self

    def target(self, name: str) -> Target:
        for t in self.targets:
            if t.name == name:
                return t
        raise KeyError(f"no target named {name!r}; configured: {', '.join(t.name for t in self.targets)}")


def _format(e: ValidationError) -> list[str]:
    out = []
    for err in e.errors():
        loc = ".".join(str(p) for p in err["loc"])
        msg = err["msg"]
        if msg.startswith("Value error, "):
            msg = msg[len("Value error, "):]
        if err["type"] == "extra_forbidden":
            msg = "unknown key; check the spelling against the config reference in README.md"
        elif err["type"] == "missing":
            msg = "required key is missing"
        out.append(f"{loc}: {msg}" if loc else msg)
    return out


def parse_config(data: Any, source: str = "config") -> Config:
    """Validate a mapping; raise ConfigError with one line per problem."""
    if not isinstance(data, dict):
        raise ConfigError(["the file must hold a YAML mapping with 'source' and 'targets'"], source)
    try:
        return Config.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_format(e), source) from None


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Load from ``path`` or from the file named by ``ACRSYNC_CONFIG``."""
    p = path or os.environ.get(CONFIG_ENV)
    if not p:
        raise ConfigError([f"no config file: pass --config PATH or set {CONFIG_ENV}=PATH"])
    p = Path(p)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError([f"cannot read {p}: {e.strerror}"], str(p)) from None
    try:
        data = yaml.safe_load(text)
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
        ledger = config.ledger.model_copy(update={k: v for k, v in (("endpoint", endpoint),
                                                                    ("instance", instance)) if v})
        config = config.model_copy(update={"ledger": ledger})
    problems = region_mismatches(config, env.get(DEPLOY_REGION_ENV) or None)
    if problems:
        raise ConfigError(problems, "environment")
    return config

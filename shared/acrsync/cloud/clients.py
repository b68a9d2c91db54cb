"""CloudSession: the one place that builds SDK clients and makes calls through them.

A session owns credentials, endpoints, timeouts, the retry policy and a time budget. Every adapter call
goes through ``CloudSession.invoke``, which refuses undeclared operations, counts each HTTP attempt in
``session.calls``, turns SDK failures into ``CloudError`` subclasses and retries the retryable ones
inside the budget. The environment (credentials, ``ACRSYNC_ENDPOINT*``) is read when a session is
built, never at import.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import field
from typing import TYPE_CHECKING, Any, TypeVar, cast
from urllib.parse import urlparse

from acrsync.clock import SYSTEM, Clock
from acrsync.cloud import credentials as creds_mod
from acrsync.cloud import errors, permissions
from acrsync.cloud.credentials import (
    AssumedRole,
    ChainCredentials,
    CredentialSource,
    Creds,
    StaticCredentials,
)
from acrsync.cloud.retry import Budget, RetryPolicy, call_with_retry
from acrsync.value import Frozen, dataclass

if TYPE_CHECKING:
    from acrsync.cloud.acr import Acr
    from acrsync.cloud.fc import Fc
    from acrsync.cloud.ots import Ots
    from acrsync.cloud.ram import Ram
    from acrsync.cloud.sts import Sts

T = TypeVar("T")

log = logging.getLogger("acrsync.cloud")

ENDPOINT_ENV = "ACRSYNC_ENDPOINT"
SERVICES = ("cr", "ram", "sts", "fc", "ots")
DEFAULT_STS_DURATION = 3600


@dataclass(frozen=True)
class Timeouts(Frozen):
    """Per-attempt timeouts in seconds (each also shortened to what is left of the budget)."""

    connect: float = 3.0
    read: float = 10.0


@dataclass(frozen=True)
class Endpoints(Frozen):
    """``ACRSYNC_ENDPOINT`` (every service) and ``ACRSYNC_ENDPOINT_<SVC>`` (one service) overrides."""

    default: str | None = None
    per_service: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Endpoints:
        per = {s: env[f"{ENDPOINT_ENV}_{s.upper()}"] for s in SERVICES
               if env.get(f"{ENDPOINT_ENV}_{s.upper()}")}
        return cls(env.get(ENDPOINT_ENV) or None, per)

    def resolve(self, service: str, default: str | None) -> str | None:
        return self.per_service.get(service) or self.default or default


def split_endpoint(url: str) -> tuple[str, str]:
    """``http://127.0.0.1:8080`` -> ("http", "127.0.0.1:8080"); a bare host means https."""
    if "://" not in url:
        return "https", url.strip().rstrip("/")
    p = urlparse(url.strip())
    if p.scheme not in ("http", "https") or not p.netloc:
        raise ValueError(f"endpoint {url!r} is not usable; write it as http://HOST:PORT or https://HOST")
    return p.scheme, p.netloc


def default_endpoint(service: str, region: str | None) -> str | None:
    """Hosts the SDKs would get wrong (None: let the SDK's own endpoint map decide).

    RAM is global: the SDK maps only some regions to ram.aliyuncs.com. fc20230330's map has a stray TAB
    after the ap-southeast-5 host (its ``_endpoint_map`` in alibabacloud-fc20230330 4.8.3). Without a region
    STS uses its global host.
    """
    if service == "ram":
        return "ram.aliyuncs.com"
    if service == "fc" and region == "ap-southeast-5":
        return "fcv3.ap-southeast-5.aliyuncs.com"
    if service == "sts" and not region:
        return "sts.aliyuncs.com"
    return None


def api_action(method: str) -> str:
    """SDK method name -> API action: ``list_policies_for_role`` -> ``ListPoliciesForRole``."""
    return "".join(part[:1].upper() + part[1:] for part in method.split("_"))


def _sdk_client_class(service: str) -> Any:
    """Imported on first use: each SDK costs tens of ms of cold start (docs/BENCHMARKS.md, cold start).

    ``Any``: the tea SDKs ship no type information."""
    if service == "cr":
        from alibabacloud_cr20181201.client import Client
    elif service == "ram":
        from alibabacloud_ram20150501.client import Client
    elif service == "sts":
        from alibabacloud_sts20150401.client import Client
    elif service == "fc":
        from alibabacloud_fc20230330.client import Client
    else:
        raise ValueError(f"no SDK client for service {service!r}; use one of cr, ram, sts, fc "
                         "(Tablestore: session.ots(endpoint, instance))")
    return Client


class _Shared:
    """What scoped copies of a session share: clients, assumed-role caches, the call counter."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.calls: Counter[str] = Counter()
        self.clients: dict[tuple[str | None, ...], Any] = {}
        self.roles: dict[str, AssumedRole] = {}
        self.pace: dict[str, Callable[[], None]] = {}   # service -> waits before each HTTP attempt


class CloudSession:
    def __init__(self, credentials: CredentialSource, *, region: str | None = None,
                 budget: Budget | None = None, endpoints: Endpoints | None = None,
                 timeouts: Timeouts = Timeouts(), policy: RetryPolicy = RetryPolicy(),
                 session_name: str = "acrsync", sts_duration: int = DEFAULT_STS_DURATION,
                 clock: Clock = SYSTEM, sleep: Callable[[float], None] = time.sleep,
                 rand: Callable[[], float] = random.random, _shared: _Shared | None = None):
        self._base = credentials
        self.region = region
        self.budget = budget or Budget.unbounded(clock)
        self.endpoints = endpoints or Endpoints()
        self.timeouts = timeouts
        self.policy = policy
        self.session_name = session_name
        self.sts_duration = sts_duration
        self.clock = clock
        self._sleep = sleep
        self._rand = rand
        self._shared = _shared or _Shared()

    # ---- construction ----------------------------------------------------------------------------

    @classmethod
    def from_environment(cls, budget: Budget | None = None, *, region: str | None = None,
                         env: Mapping[str, str] | None = None, **kw: Any) -> CloudSession:
        """CLI: ALIBABA_CLOUD_* keys if set now, else alibabacloud_credentials' default chain."""
        env = os.environ if env is None else env
        found = creds_mod.from_env(env)
        source: CredentialSource = StaticCredentials(found) if found else ChainCredentials()
        region = region or env.get("ALIBABA_CLOUD_REGION_ID") or env.get("FC_REGION") or None
        return cls(source, region=region, budget=budget, endpoints=Endpoints.from_env(env), **kw)

    @classmethod
    def from_fc_context(cls, context: Any, budget: Budget | None = None, *,
                        env: Mapping[str, str] | None = None, **kw: Any) -> CloudSession:
        """FC: ``context.credentials`` (python3.10) or the ALIBABA_CLOUD_* variables (python3.12)."""
        env = os.environ if env is None else env
        found = creds_mod.from_fc_context(context) or creds_mod.from_env(env)
        if found is None:
            raise errors.CloudError(
                "the function has no credentials: neither context.credentials nor "
                f"{creds_mod.ENV_ACCESS_KEY_ID}/{creds_mod.ENV_ACCESS_KEY_SECRET} are set; give the "
                "function a role (s.yaml: role) so FC injects its temporary keys",
                service="credentials", action="Resolve", code="NoCredentials")
        region = kw.pop("region", None) or getattr(context, "region", None) or env.get("FC_REGION") or None
        return cls(StaticCredentials(found), region=region, budget=budget, endpoints=Endpoints.from_env(env),
                   **kw)

    @classmethod
    def from_keys(cls, access_key_id: str, access_key_secret: str, security_token: str | None = None, *,
                  env: Mapping[str, str] | None = None, **kw: Any) -> CloudSession:
        """Explicit keys (tests, the emulator demo); endpoints still come from ``env``."""
        env = os.environ if env is None else env
        creds = Creds(access_key_id, access_key_secret, security_token)
        return cls(StaticCredentials(creds), endpoints=Endpoints.from_env(env), **kw)

    def scoped(self, budget: Budget) -> CloudSession:
        """Same clients, credentials and counter; a new deadline (one per FC invocation)."""
        return CloudSession(self._base, region=self.region, budget=budget, endpoints=self.endpoints,
                            timeouts=self.timeouts, policy=self.policy, session_name=self.session_name,
                            sts_duration=self.sts_duration, clock=self.clock, sleep=self._sleep,
                            rand=self._rand, _shared=self._shared)

    # ---- what the rest of acrsync uses -----------------------------------------------------------

    def set_pace(self, service: str, pace: Callable[[], None] | None) -> None:
        """Call ``pace()`` before every HTTP attempt to ``service`` (a shared rate cap, e.g. backfill.qps);
        None removes it. Shared with scoped copies."""
        with self._shared.lock:
            if pace is None:
                self._shared.pace.pop(service, None)
            else:
                self._shared.pace[service] = pace

    @property
    def calls(self) -> Counter[str]:
        """HTTP attempts per ``<service>:<Action>`` (retries included), shared with scoped copies."""
        return self._shared.calls

    def endpoint_for(self, service: str, default: str | None) -> str | None:
        """The endpoint for ``service``: ACRSYNC_ENDPOINT_<SVC>, else ACRSYNC_ENDPOINT, else ``default``."""
        return self.endpoints.resolve(service, default)

    def credentials(self, role_arn: str | None = None) -> Creds:
        """Current keys (of ``role_arn`` when given, assuming it through STS when the cache is stale)."""
        if role_arn is None:
            return self._base.get()
        return self._role(role_arn).get(lambda: self._assume(role_arn))

    def acr(self, region: str, role_arn: str | None = None) -> Acr:
        from acrsync.cloud.acr import Acr

        return Acr(self, region, role_arn)

    def ram(self, role_arn: str | None = None) -> Ram:
        from acrsync.cloud.ram import Ram

        return Ram(self, role_arn)

    def sts(self, region: str | None = None) -> Sts:
        from acrsync.cloud.sts import Sts

        return Sts(self, region or self.region)

    def fc(self, region: str) -> Fc:
        from acrsync.cloud.fc import Fc

        return Fc(self, region)

    # ---- internals used by the adapters ----------------------------------------------------------

    def _role(self, role_arn: str) -> AssumedRole:
        with self._shared.lock:
            role = self._shared.roles.get(role_arn)
            if role is None:
                role = AssumedRole(role_arn, lambda: self._assume(role_arn), clock=self.clock)
                self._shared.roles[role_arn] = role
            return role

    def _assume(self, role_arn: str) -> Creds:
        return self.sts().assume_role(role_arn, self.session_name, self.sts_duration)

    def _source(self, role_arn: str | None) -> CredentialSource:
        return self._base if role_arn is None else self._role(role_arn)

    def client(self, service: str, region: str | None, role_arn: str | None = None) -> Any:
        """The SDK client for ``service`` in ``region`` (signing as ``role_arn`` when given), cached."""
        key = (service, region, role_arn)
        with self._shared.lock:
            cached = self._shared.clients.get(key)
            if cached is not None:
                return cached
        from alibabacloud_tea_openapi.utils_models import Config

        cfg = Config(credential=creds_mod.SdkCredential(self._source(role_arn)),
                     region_id=region or self.region or "cn-hangzhou",
                     connect_timeout=int(self.timeouts.connect * 1000),
                     read_timeout=int(self.timeouts.read * 1000))
        url = self.endpoint_for(service, default_endpoint(service, region))
        if url:
            cfg.protocol, cfg.endpoint = split_endpoint(url)
        client = _sdk_client_class(service)(cfg)
        with self._shared.lock:
            return self._shared.clients.setdefault(key, client)

    def client_for(self, key: tuple[str, ...], build: Callable[[], T]) -> T:
        """A client built once per session family (scoped copies share it), e.g. an OTSClient."""
        with self._shared.lock:
            cached = self._shared.clients.get(key)
        # the cache holds every kind of client; ``key`` names the one ``build`` makes
        if cached is not None:
            return cast(T, cached)
        client = build()
        with self._shared.lock:
            return cast(T, self._shared.clients.setdefault(key, client))

    def ots(self, endpoint: str, instance: str) -> Ots:
        """The Tablestore adapter for one instance (the ledger's backend calls)."""
        from acrsync.cloud.ots import Ots

        return Ots(self, endpoint, instance)

    def call(self, service: str, action: str, attempt: Callable[[float], T], *,
             translate: Callable[[BaseException, str], errors.CloudError | None]) -> T:
        """Run ``attempt(remaining_seconds)`` as one declared, counted, retried cloud operation.

        For SDKs that are not tea-based (Tablestore): ``translate`` turns their exceptions into
        CloudErrors; the retry decision and the budget are the same as ``invoke``'s.
        """
        decl = permissions.required(service, action)

        def one(remaining: float) -> T:
            self._count(decl.key)
            try:
                return attempt(remaining)
            except errors.CloudError:
                raise
            except Exception as exc:
                err = translate(exc, action)
                if err is None:
                    raise
                raise err from exc

        return call_with_retry(one, budget=self.budget, policy=self.policy, idempotent=decl.idempotent,
                               sleep=self._sleep, rand=self._rand, on_retry=self._on_retry(decl.key))

    def _count(self, key: str) -> None:
        with self._shared.lock:
            self._shared.calls[key] += 1

    def _on_retry(self, key: str) -> Callable[[errors.CloudError, int, float], None]:
        def log_retry(err: errors.CloudError, attempt: int, delay: float) -> None:
            log.info("retrying %s after %s (attempt %d, next in %.2fs)", key, err.code, attempt, delay,
                     extra={"action": key, "code": err.code, "attempt": attempt, "delay": round(delay, 3),
                            "request_id": err.request_id, "http_status": err.http_status})
        return log_retry

    def invoke(self, service: str, client: Any, method: str, *args: Any, role_arn: str | None = None) -> Any:
        """Call ``client.<method>_with_options(*args, runtime)`` with retries, typed errors and counting."""
        from darabonba.runtime import RuntimeOptions

        action = api_action(method)
        decl = permissions.required(service, action)
        sdk_method = getattr(client, f"{method}_with_options")

        def attempt(remaining: float) -> Any:
            # Resolve keys first: a missing key or a failed AssumeRole surfaces as itself (under this
            # session's budget), not wrapped by the SDK, and is not counted as an HTTP attempt.
            self.credentials(role_arn)
            runtime = RuntimeOptions(connect_timeout=_ms(min(self.timeouts.connect, remaining)),
                                     read_timeout=_ms(min(self.timeouts.read, remaining)))
            pace = self._shared.pace.get(service)
            if pace is not None:
                pace()
            self._count(decl.key)
            try:
                resp = sdk_method(*args, runtime)
            except Exception as exc:
                err = errors.from_exception(exc, service=service, action=action)
                if err is None:
                    raise
                raise err from exc
            body = getattr(resp, "body", None)
            if body is not None and hasattr(body, "to_map"):
                err = errors.from_body(body.to_map(), service=service, action=action,
                                       http_status=getattr(resp, "status_code", None))
                if err is not None:
                    raise err
            return resp

        return call_with_retry(attempt, budget=self.budget, policy=self.policy, idempotent=decl.idempotent,
                               sleep=self._sleep, rand=self._rand, on_retry=self._on_retry(decl.key))


def _ms(seconds: float) -> int:
    return max(1, int(seconds * 1000))


class Adapter:
    """Base of Acr/Ram/Sts/Fc: one SDK client, calls made through the session."""

    service = ""

    def __init__(self, session: CloudSession, region: str | None, role_arn: str | None = None):
        self.session = session
        self.region = region
        self.role_arn = role_arn
        self._client = session.client(self.service, region, role_arn)

    def _call(self, method: str, *args: Any) -> Any:
        return self.session.invoke(self.service, self._client, method, *args, role_arn=self.role_arn)

    def _body(self, method: str, *args: Any) -> dict[str, Any]:
        """Call and return the reply body as the wire-named dict (``RequestId``, ``IsSuccess``, ...)."""
        resp = self._call(method, *args)
        return resp.body.to_map() if resp.body is not None else {}


def request(model_cls: type, **wire: Any) -> Any:
    """An SDK request model from wire names, leaving out what is None."""
    return model_cls().from_map({k: v for k, v in wire.items() if v is not None})

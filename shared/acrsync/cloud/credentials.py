"""Where acrsync's keys come from, and how the SDK clients read them on every request.

Sources, in the order a session looks for them:
- FC's ``context.credentials`` (python3.10) - the function role's temporary keys, rotated by FC;
- ``ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET/SECURITY_TOKEN`` read when the session is built (python3.12 has no
  context.credentials; alibabacloud_credentials' own env provider reads them once at import, so a value
  set later would be missed by it);
- alibabacloud_credentials' default chain for the CLI (CLI profile, profile file, ECS metadata, ...);
- ``AssumedRole`` on top of any of them for account B (``ram_role_arn``).

AssumedRole calls STS AssumeRole through acrsync's own Sts adapter rather than alibabacloud_credentials'
``ram_role_arn`` provider, because that provider signs its own request to a fixed STS host: it would
bypass ACRSYNC_ENDPOINT (so it could not run against localcloud), the time budget and the retries, and
its AssumeRole would be missing from ``session.calls``. The result is cached until 15 minutes before it
expires, the same margin alibabacloud_credentials uses.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import field
from typing import TYPE_CHECKING, Any, Protocol

from acrsync.clock import SYSTEM, Clock
from acrsync.cloud.errors import NoCredentials
from acrsync.value import Frozen, dataclass

if TYPE_CHECKING:
    from alibabacloud_credentials.models import CredentialModel

ENV_ACCESS_KEY_ID = "ALIBABA_CLOUD_ACCESS_KEY_ID"
ENV_ACCESS_KEY_SECRET = "ALIBABA_CLOUD_ACCESS_KEY_SECRET"
ENV_SECURITY_TOKEN = "ALIBABA_CLOUD_SECURITY_TOKEN"
REFRESH_BEFORE_EXPIRY = 15 * 60


@dataclass(frozen=True)
class Creds(Frozen):
    """One set of keys. The secret and token never appear in repr (and so never in a log line)."""

    access_key_id: str
    access_key_secret: str = field(repr=False)
    security_token: str | None = field(default=None, repr=False)
    expiration: float | None = None          # epoch seconds; None for long-lived keys

    @property
    def kind(self) -> str:
        return "sts" if self.security_token else "access_key"


class CredentialSource(Protocol):
    def get(self) -> Creds:
        """Current keys, refreshed when needed; raises CloudError when there are none."""
        ...


class StaticCredentials:
    def __init__(self, creds: Creds):
        self._creds = creds

    def get(self) -> Creds:
        return self._creds


def _no_credentials(detail: str) -> NoCredentials:
    return NoCredentials(
        f"no Alibaba Cloud credentials ({detail}). Fix: set {ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET} "
        f"(plus {ENV_SECURITY_TOKEN} for STS keys) to a RAM user's AccessKey, or make a profile with "
        "`aliyun configure` and pass --profile NAME")


class ChainCredentials:
    """alibabacloud_credentials' default chain (env at import, OIDC, CLI profile, profile file, ECS...)."""

    def __init__(self, client: Any = None):
        if client is None:
            from alibabacloud_credentials.client import Client

            client = Client()
        self._client = client

    def get(self) -> Creds:
        try:
            with _quiet_library():
                m = self._client.get_credential()
        except Exception as e:
            # the chain raises its own CredentialException with the providers tried
            raise _no_credentials("the default chain of environment, aliyun CLI profile, profile file and "
                                  "ECS metadata found none") from e
        if not m.access_key_id or not m.access_key_secret:
            raise _no_credentials("the default credential chain returned empty keys")
        return Creds(m.access_key_id, m.access_key_secret, m.security_token or None)


class ProfileCredentials:
    """One named profile of the aliyun CLI's config (~/.aliyun/config.json), as ``--profile`` names it."""

    def __init__(self, name: str):
        self.name = name
        self._chain: ChainCredentials | None = None

    def get(self) -> Creds:
        if self._chain is None:
            from alibabacloud_credentials.client import Client
            from alibabacloud_credentials.provider.cli_profile import CLIProfileCredentialsProvider

            provider = CLIProfileCredentialsProvider(profile_name=self.name)
            self._chain = ChainCredentials(Client(provider=provider))
        try:
            return self._chain.get()
        except NoCredentials as e:
            raise NoCredentials(
                f"the aliyun CLI profile {self.name!r} gave no keys ({_first_line(e.__cause__ or e)}); "
                "list the profiles with `aliyun configure list`, or drop --profile to use "
                f"{ENV_ACCESS_KEY_ID}/{ENV_ACCESS_KEY_SECRET}") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0][:300] if text else type(e).__name__


class _quiet_library:
    """alibabacloud_credentials logs each failed provider of its chain with a traceback: keep them off the
    user's terminal (the one error that results says what to do)."""

    NAMES = ("credentials", "alibabacloud_credentials")      # the library logs as 'credentials'

    def __enter__(self) -> None:
        import logging

        self._saved = [(lg, lg.disabled) for lg in map(logging.getLogger, self.NAMES)]
        for lg, _ in self._saved:
            lg.disabled = True

    def __exit__(self, *exc: object) -> None:
        for lg, was in self._saved:
            lg.disabled = was


def from_env(env: Mapping[str, str]) -> Creds | None:
    """Keys from the ALIBABA_CLOUD_* variables, or None when they are not both set."""
    ak, sk = env.get(ENV_ACCESS_KEY_ID), env.get(ENV_ACCESS_KEY_SECRET)
    if not ak or not sk:
        return None
    return Creds(ak, sk, env.get(ENV_SECURITY_TOKEN) or None)


def from_fc_context(context: Any) -> Creds | None:
    """``context.credentials`` of FC's python3.10 runtime, or None (python3.12 has none)."""
    c = getattr(context, "credentials", None)
    if c is None:
        return None

    def get(key: str) -> Any:
        return c.get(key) if isinstance(c, Mapping) else getattr(c, key, None)

    ak = get("access_key_id") or get("accessKeyId")
    sk = get("access_key_secret") or get("accessKeySecret")
    if not ak or not sk:
        return None
    return Creds(ak, sk, get("security_token") or get("securityToken") or None)


class AssumedRole:
    """Temporary keys of a role (account B's reader), re-assumed 15 minutes before they expire."""

    def __init__(self, role_arn: str, assume: Callable[[], Creds], *, clock: Clock = SYSTEM,
                 refresh_before: float = REFRESH_BEFORE_EXPIRY):
        self.role_arn = role_arn
        self._assume = assume
        self._clock = clock
        self._refresh_before = refresh_before
        self._creds: Creds | None = None
        self._lock = threading.Lock()

    def _fresh(self) -> bool:
        c = self._creds
        if c is None:
            return False
        return c.expiration is None or self._clock.now() < c.expiration - self._refresh_before

    def get(self, assume: Callable[[], Creds] | None = None) -> Creds:
        """Cached keys, or new ones from ``assume`` (default: the callable given at construction)."""
        with self._lock:
            creds = self._creds
            if creds is None or not self._fresh():
                creds = self._creds = (assume or self._assume)()
            return creds


class SdkCredential:
    """What tea-openapi's ``Config(credential=...)`` expects: ``get_credential()`` per request."""

    def __init__(self, source: CredentialSource):
        self._source = source

    def get_credential(self) -> CredentialModel:
        from alibabacloud_credentials.models import CredentialModel

        c = self._source.get()
        return CredentialModel(access_key_id=c.access_key_id, access_key_secret=c.access_key_secret,
                               security_token=c.security_token, type=c.kind, provider_name="acrsync")

    async def get_credential_async(self) -> CredentialModel:
        return self.get_credential()

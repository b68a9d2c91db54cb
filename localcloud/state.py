"""The emulated world: accounts, RAM entities and ACR instances (moto's ``models`` layer, shared part).

Service-specific state that only one service touches (ACR sync rules and tasks, Tablestore tables)
lives with that service; this module holds what several services read.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class PolicyVersion:
    version_id: str            # "v1", "v2", ...
    document: str              # JSON text, as RAM stores it
    create_date: str           # "YYYY-MM-DDThh:mm:ssZ"


@dataclass
class Policy:
    name: str
    type: str = "Custom"       # "Custom" | "System"
    description: str = ""
    versions: dict[str, PolicyVersion] = field(default_factory=dict)
    default_version: str = "v1"
    create_date: str = ""
    update_date: str = ""

    @property
    def document(self) -> str:
        return self.versions[self.default_version].document


@dataclass
class Role:
    name: str
    role_id: str
    account_id: str
    trust_policy: str          # AssumeRolePolicyDocument, JSON text
    description: str = ""
    max_session_duration: int = 3600
    create_date: str = ""
    update_date: str = ""
    attached: list[tuple[str, str]] = field(default_factory=list)   # [(policy_name, policy_type)]
    attach_dates: dict[tuple[str, str], str] = field(default_factory=dict)  # (name, type) -> AttachDate

    @property
    def arn(self) -> str:
        return f"acs:ram::{self.account_id}:role/{self.name}"   # RAM keeps the case the role was created with


@dataclass
class Tag:
    tag: str
    digest: str                # bare hex, no "sha256:" prefix, as ACR returns it
    image_id: str
    size: int
    created_ms: int
    updated_ms: int
    status: str = "NORMAL"


@dataclass
class Repo:
    repo_id: str               # "crr-..."
    name: str
    namespace: str
    instance_id: str
    type: str = "PRIVATE"      # PUBLIC | PRIVATE
    tag_immutability: bool = False
    summary: str = ""
    build_type: str = "MANUAL"  # MANUAL | AUTO (auto-created on push or by sync)
    created_ms: int = 0
    modified_ms: int = 0
    tags: dict[str, Tag] = field(default_factory=dict)


@dataclass
class Namespace:
    namespace_id: str
    name: str
    instance_id: str
    auto_create_repo: bool = False
    default_repo_type: str = "PRIVATE"
    repos: dict[str, Repo] = field(default_factory=dict)


@dataclass
class Instance:
    instance_id: str           # "cri-..."
    account_id: str
    region: str
    edition: str               # Enterprise_Basic | Enterprise_Standard | Enterprise_Advanced
    name: str = ""
    status: str = "RUNNING"
    created_ms: int = 0
    namespaces: dict[str, Namespace] = field(default_factory=dict)


@dataclass
class Account:
    account_id: str
    access_keys: dict[str, str] = field(default_factory=dict)      # id -> secret (the account's root keys)
    # name -> {"access_keys": {...}, "policies": [...]}
    users: dict[str, dict] = field(default_factory=dict)
    roles: dict[str, Role] = field(default_factory=dict)            # keyed by lower-cased role name
    policies: dict[str, Policy] = field(default_factory=dict)       # custom policies by name


@dataclass
class World:
    """Everything the emulator knows. One lock guards it: handlers are short."""

    accounts: dict[str, Account] = field(default_factory=dict)
    instances: dict[str, Instance] = field(default_factory=dict)
    clock: Any = None                          # localcloud.clock.Clock
    lock: threading.RLock = field(default_factory=threading.RLock)
    # Hooks set by the server: emit a CloudEvent to subscribers.
    emit: Callable[[dict], None] = lambda event: None
    # Per-service state owned by that service's models module (e.g. "acr", "ots").
    backends: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)          # scenario "settings:" block

    def account(self, account_id: str) -> Account | None:
        return self.accounts.get(str(account_id))

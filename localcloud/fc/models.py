"""Function Compute 3.0 state and rules: the scenario's functions, their invocations, EventBridge triggers.

A function runs in the localcloud runtime (``runtime.run``: a subprocess, never an import) with the
temporary credentials of its role, issued through localcloud's own STS sessions after the role's trust
policy is checked for ``fc.aliyuncs.com``, exactly as FC assumes the role. The SDK calls the function makes
are therefore signed with a real localcloud STS token and judged by the role's policies.

Functions are addressed by (account, name): the endpoint has no region in it, so a name is unique per
account. ``attach`` (called by the server once it listens) gives the backend its URL and the event stream;
events matching an ``eventbridge`` trigger of a function in the event's account and region start an
asynchronous invocation on its own thread, so the delivery thread is never held up.
"""

from __future__ import annotations

import hashlib
import json
import queue
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from localcloud import identity
from localcloud.clock import iso
from localcloud.fc import runtime
from localcloud.policy import trust_allows
from localcloud.ram.models import get_role
from localcloud.service import ServiceError
from localcloud.state import World

FC_SERVICE = "fc.aliyuncs.com"
FUNCTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
ENV_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
ROLE_ARN = re.compile(r"acs:ram::(\d+):role/([A-Za-z0-9.\-]{1,64})")
ENV_LIMIT_BYTES = 4096
# FC's role credentials last 36 h (https://www.alibabacloud.com/help/doc-detail/158690.htm)
CREDENTIAL_SECONDS = 36 * 3600
MAX_RECORDED_REPLY = 64 * 1024
RUNTIMES = ("python3.9", "python3.10", "python3.12")


class FunctionSpecError(ValueError):
    """The scenario's ``functions:`` are invalid; ``problems`` lists each with its path."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", coerce_numbers_to_str=True)


class TriggerSpec(_Spec):
    """eventbridge: ``pattern`` (matched against emitted events); timer: ``cron`` and ``payload`` (readable
    through ListTriggers/GetTrigger; localcloud's clock does not fire them); http: ``auth_type``."""

    type: Literal["eventbridge", "timer", "http"]
    name: str = ""
    pattern: dict[str, Any] | None = None
    enabled: bool = True
    cron: str = "0 0 * * * *"
    payload: str = ""
    auth_type: Literal["anonymous", "function"] = "anonymous"


class FunctionSpec(_Spec):
    name: str
    account: str
    region: str = Field(min_length=1)
    runtime: Literal["python3.9", "python3.10", "python3.12"] = "python3.10"
    code: str = Field(min_length=1)
    handler: str = "index.handler"
    timeout: int = Field(3, ge=1, le=86400)
    memory_size: int = Field(512, ge=128, le=32768)
    role: str | None = None
    description: str = ""
    environment: dict[str, Union[str, int, float, bool]] = {}
    triggers: list[TriggerSpec] = []


@dataclass(frozen=True)
class Trigger:
    name: str
    pattern: dict | None
    type: str = "eventbridge"
    enabled: bool = True
    cron: str = ""
    payload: str = ""
    auth_type: str = "anonymous"

    def config(self) -> dict:
        """``triggerConfig`` as FC 3.0 documents it per type (EventBridgeTriggerConfig, TimerTriggerConfig,
        HTTPTriggerConfig); FC returns it as a JSON string."""
        if self.type == "eventbridge":
            return {"triggerEnable": self.enabled, "asyncInvocationType": False,
                    "eventRuleFilterPattern": json.dumps(self.pattern or {}),
                    "eventSourceConfig": {"eventSourceType": "Default"}}
        if self.type == "timer":
            return {"cronExpression": self.cron, "enable": self.enabled, "payload": self.payload}
        return {"authType": self.auth_type, "methods": ["GET", "POST"], "disableURLInternet": False}

    def view(self, fn: Function) -> dict:
        """GetTrigger's body (FC 3.0 ``Trigger``, camelCase)."""
        out = {"triggerName": self.name, "triggerType": self.type, "triggerId": str(uuid.uuid5(
                   uuid.NAMESPACE_URL, f"{fn.arn}/triggers/{self.name}")),
               "triggerConfig": json.dumps(self.config()), "qualifier": "LATEST", "description": "",
               "createdTime": fn.created, "lastModifiedTime": fn.created, "status": "Ready",
               "targetArn": fn.arn, "invocationRole": "", "sourceArn": ""}
        if self.type == "http":
            host = f"{fn.name}.{fn.region}.fcapp.run"
            out["httpTrigger"] = {"urlInternet": f"https://{host}", "urlIntranet": f"https://{host}"}
        return out


@dataclass
class Function:
    name: str
    account_id: str
    region: str
    runtime: str
    code_dir: Path
    handler: str
    timeout: int
    memory_size: int
    role_arn: str | None
    description: str
    environment: dict[str, str]
    triggers: list[Trigger]
    created: str

    @property
    def arn(self) -> str:
        return f"acs:fc:{self.region}:{self.account_id}:functions/{self.name}"

    def view(self) -> dict:
        """GetFunction's body (FC 3.0 ``Function``, camelCase)."""
        code = (self.code_dir / (self.handler.rpartition(".")[0].replace(".", "/") + ".py"))
        checksum = hashlib.sha256(code.read_bytes()).hexdigest()[:20] if code.is_file() else ""
        return {
            "functionName": self.name, "functionArn": self.arn,
            "functionId": str(uuid.uuid5(uuid.NAMESPACE_URL, self.arn)),
            "description": self.description, "runtime": self.runtime, "handler": self.handler,
            "timeout": self.timeout, "memorySize": self.memory_size, "cpu": round(self.memory_size / 1024, 2),
            "diskSize": 512, "instanceConcurrency": 1, "internetAccess": True,
            "role": self.role_arn or "", "environmentVariables": dict(self.environment),
            "codeSize": code.stat().st_size if code.is_file() else 0, "codeChecksum": checksum,
            "createdTime": self.created, "lastModifiedTime": self.created, "state": "Active",
            "lastUpdateStatus": "Successful", "layers": [], "tags": [],
        }


@dataclass
class Invocation:
    request_id: str
    function: str
    account_id: str
    trigger: str                     # api | eventbridge
    invocation_type: str             # Sync | Async
    started_at: str                  # emulator clock
    trigger_name: str = ""
    event_id: str = ""
    status: str = "running"          # queued | running | succeeded | failed | timeout
    duration_ms: int = 0
    result: str | None = None
    error: dict | None = None
    logs: list[str] = field(default_factory=list)
    body: bytes = b""

    def view(self) -> dict:
        return {"request_id": self.request_id, "function": self.function, "account_id": self.account_id,
                "trigger": self.trigger, "trigger_name": self.trigger_name, "event_id": self.event_id,
                "invocation_type": self.invocation_type, "status": self.status, "started_at": self.started_at,
                "duration_ms": self.duration_ms, "result": self.result, "error": self.error,
                "logs": self.logs}


# ---- EventBridge patterns ---------------------------------------------------------------------------------

def pattern_problems(pattern: Any, where: str) -> list[str]:
    """What localcloud cannot match in a pattern: exact values only, keys AND, array values OR."""
    if not isinstance(pattern, dict) or not pattern:
        return [f"{where}: an event pattern is a non-empty mapping, e.g. "
                '{"source": ["acs.cr"], "type": ["cr:Artifact:PushCompleted"]}']
    problems = []
    for key, value in pattern.items():
        if isinstance(value, dict):
            problems += pattern_problems(value, f"{where}.{key}")
        elif not isinstance(value, list) or not value:
            problems.append(f"{where}.{key}: must be a non-empty list of values (or a mapping for nested "
                            f"keys), not {value!r}")
        elif any(isinstance(v, (dict, list)) for v in value):
            problems.append(f"{where}.{key}: localcloud matches exact values only; the "
                            "prefix/suffix/anything-but/numeric/cidr/exists operators are not emulated")
    return problems


def matches(pattern: dict, event: Any) -> bool:
    """EventBridge exact matching: every pattern key must match (AND); a list matches any of its values (OR);
    a nested mapping matches the event's nested object; an event array matches if any element does."""
    if not isinstance(event, dict):
        return False
    for key, want in pattern.items():
        if key not in event:
            return False
        got = event[key]
        if isinstance(want, dict):
            if not matches(want, got):
                return False
            continue
        values = got if isinstance(got, list) else [got]
        if not any(_equal(v, w) for v in values for w in want):
            return False
    return True


def _equal(got: Any, want: Any) -> bool:
    return type(got) is type(want) and got == want


# ---- the backend ------------------------------------------------------------------------------------------

class FcBackend:
    """The functions of a world and their invocations. Its own lock: invocations never hold the world's."""

    def __init__(self, world: World, functions: list[Function], pythonpath: list[Path], *,
                 instance_reuse: bool = False, async_concurrency: int | None = None):
        self.world = world
        # FC keeps instances warm between invocations and queues asynchronous invocations, running them as
        # capacity allows: ``settings.fc_instance_reuse`` and ``settings.fc_async_concurrency`` (opt-in).
        self.instance_reuse = instance_reuse
        self.async_concurrency = async_concurrency
        self._idle: dict[tuple[str, str], list[runtime.WarmInstance]] = {}
        self._warm: list[runtime.WarmInstance] = []
        self._queue: queue.Queue = queue.Queue()
        self._workers: list[threading.Thread] = []
        self.functions = {(f.account_id, f.name): f for f in functions}
        self.pythonpath = pythonpath
        self.url: str | None = None
        self.invocations: list[Invocation] = []
        self._cond = threading.Condition()
        self._procs: dict[str, subprocess.Popen] = {}
        self._drain: Callable[[float], bool] | None = None
        self._subscribed = False

    # ---- lookups --------------------------------------------------------------------------------------
    def function(self, account_id: str, name: str) -> Function | None:
        return self.functions.get((account_id, name))

    # ---- invocations ----------------------------------------------------------------------------------
    def invoke(self, fn: Function, event: bytes, *, invocation_type: str = "Sync", trigger: str = "api",
               trigger_name: str = "", event_id: str = "") -> Invocation:
        """Sync: run now and return the finished record. Async: start it on a thread and return at once.
        A role FC cannot assume is refused before anything runs (ServiceError)."""
        credentials = self.role_credentials(fn)
        record = Invocation(request_id=f"1-{uuid.uuid4().hex[:8]}-{uuid.uuid4().hex[:8]}-"
                                       f"{uuid.uuid4().hex[:12]}",
                            function=fn.name, account_id=fn.account_id, trigger=trigger,
                            invocation_type=invocation_type, started_at=iso(self.world.clock.now()),
                            trigger_name=trigger_name, event_id=event_id)
        with self._cond:
            self.invocations.append(record)
        launch = self._launch(fn, record, credentials, event)
        if invocation_type == "Async" and self.async_concurrency:
            record.status = "queued"
            self._queue.put((fn, record, launch))
            self._start_workers()
        elif invocation_type == "Async":
            threading.Thread(target=self._run, args=(record, launch, fn), daemon=True,
                             name=f"localcloud-fc-{fn.name}").start()
        else:
            self._run(record, launch, fn)
        return record

    def _start_workers(self) -> None:
        with self._cond:
            while len(self._workers) < (self.async_concurrency or 0):
                worker = threading.Thread(target=self._work, daemon=True,
                                          name=f"localcloud-fc-async-{len(self._workers)}")
                self._workers.append(worker)
                worker.start()

    def _work(self) -> None:
        while True:
            fn, record, launch = self._queue.get()
            with self._cond:
                record.status = "running"
            self._run(record, launch, fn)

    def _execute(self, fn: Function, launch: runtime.Launch, on_start) -> runtime.Outcome:
        """A fresh process per invocation, or (instance reuse) an idle warm instance of the function."""
        if not self.instance_reuse:
            return runtime.run(launch, on_start=on_start)
        key = (fn.account_id, fn.name)
        with self._cond:
            idle = self._idle.setdefault(key, [])
            instance = idle.pop() if idle else None
        if instance is None or not instance.alive:
            instance = runtime.WarmInstance(launch.code_dir, launch.env)
            with self._cond:
                self._warm.append(instance)
        on_start(instance.proc)
        outcome = instance.run(launch)
        if instance.alive:
            with self._cond:
                self._idle[key].append(instance)
        return outcome

    def _run(self, record: Invocation, launch: runtime.Launch, fn: Function) -> None:
        def started(proc: subprocess.Popen) -> None:
            with self._cond:
                self._procs[record.request_id] = proc

        try:
            outcome = self._execute(fn, launch, started)
        except Exception as exc:          # the runtime itself broke: still finish the record
            outcome = runtime.Outcome(runtime.FAILED, error={"errorMessage": f"localcloud runtime failed: "
                                                                             f"{exc!r}",
                                                            "errorType": "RuntimeError", "stackTrace": []})
        header = f"FC Invoke Start RequestId: {record.request_id}"
        footer = f"FC Invoke End RequestId: {record.request_id}"
        with self._cond:
            self._procs.pop(record.request_id, None)
            record.body = outcome.body
            record.result = outcome.body[:MAX_RECORDED_REPLY].decode("utf-8", "replace") \
                if outcome.status == runtime.SUCCEEDED else None
            record.error = outcome.error
            record.logs = [header, *outcome.logs, footer]
            record.duration_ms = outcome.duration_ms
            record.status = outcome.status
            self._cond.notify_all()

    def role_credentials(self, fn: Function) -> identity.TemporaryCredential | None:
        """The role's temporary keys, as FC gets them: only if the role still trusts fc.aliyuncs.com."""
        if not fn.role_arn:
            return None
        account_id, role_name = ROLE_ARN.fullmatch(fn.role_arn).groups()  # type: ignore[union-attr]
        try:
            role = get_role(self.world, account_id, role_name)
        except ServiceError:
            raise ServiceError(400, "InvalidArgument",   # UNVERIFIED code
                               f"The role {fn.role_arn} of function {fn.name} does not exist; create it or "
                               "change the function's role.") from None
        if not trust_allows(role.trust_policy, service=FC_SERVICE):
            raise ServiceError(403, "AccessDenied",      # UNVERIFIED code
                               f"Function Compute cannot assume {fn.role_arn}: its trust policy must allow "
                               f"sts:AssumeRole for the service {FC_SERVICE}.")
        return identity.issue(self.world, account_id=account_id, role_name=role.name, role_id=role.role_id,
                              session_name=fn.name if len(fn.name) >= 2 else f"fc-{fn.name}",  # UNVERIFIED
                              duration=CREDENTIAL_SECONDS, session_policy=None)

    def _launch(self, fn: Function, record: Invocation, cred: identity.TemporaryCredential | None,
                event: bytes) -> runtime.Launch:
        env = runtime.base_env()
        env.update(fn.environment)
        if self.url:
            env.setdefault("ACRSYNC_ENDPOINT", self.url)
        env.update({
            "FC_FUNCTION_NAME": fn.name, "FC_FUNCTION_HANDLER": fn.handler,
            "FC_FUNCTION_MEMORY_SIZE": str(fn.memory_size), "FC_REGION": fn.region,
            "FC_ACCOUNT_ID": fn.account_id,
            "FC_FUNC_CODE_PATH": str(fn.code_dir), "FC_INSTANCE_ID": f"c-{record.request_id[-12:]}",
            "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true",
            "PYTHONPATH": ":".join([str(fn.code_dir), *(str(p) for p in self.pythonpath)]),
        })
        credentials = None
        if cred is not None:
            env.update({"ALIBABA_CLOUD_ACCESS_KEY_ID": cred.access_key_id,
                        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": cred.secret,
                        "ALIBABA_CLOUD_SECURITY_TOKEN": cred.token})
            credentials = {"access_key_id": cred.access_key_id, "access_key_secret": cred.secret,
                           "security_token": cred.token}
        context = {"request_id": record.request_id, "region": fn.region, "account_id": fn.account_id,
                   "credentials": credentials,
                   "function": {"name": fn.name, "handler": fn.handler, "memory": fn.memory_size,
                                "timeout": fn.timeout}}
        return runtime.Launch(code_dir=fn.code_dir, runtime=fn.runtime, handler=fn.handler,
                              timeout=fn.timeout,
                              env=env, context=context, event=event)

    # ---- triggers -------------------------------------------------------------------------------------
    def on_event(self, event: dict) -> None:
        """Start an async invocation of every function whose eventbridge trigger matches (never waits)."""
        account = str(event.get("aliyunaccountid", ""))
        region = str(event.get("aliyunregionid", ""))
        body = json.dumps(event).encode("utf-8")
        for fn in list(self.functions.values()):
            if fn.account_id != account or fn.region != region:
                continue
            for trig in fn.triggers:
                if trig.type != "eventbridge" or not trig.enabled or not matches(trig.pattern or {}, event):
                    continue
                try:
                    self.invoke(fn, body, invocation_type="Async", trigger="eventbridge",
                                trigger_name=trig.name,
                                event_id=str(event.get("id", "")))
                except ServiceError as exc:
                    self._refused(fn, trig, event, exc)

    def _refused(self, fn: Function, trig: Trigger, event: dict, exc: ServiceError) -> None:
        record = Invocation(request_id=f"refused-{uuid.uuid4().hex[:12]}", function=fn.name,
                            account_id=fn.account_id, trigger="eventbridge", invocation_type="Async",
                            started_at=iso(self.world.clock.now()), trigger_name=trig.name,
                            event_id=str(event.get("id", "")), status=runtime.FAILED,
                            error={"errorMessage": exc.message, "errorType": exc.code, "stackTrace": []})
        with self._cond:
            self.invocations.append(record)
            self._cond.notify_all()

    # ---- views ----------------------------------------------------------------------------------------
    def views(self, function: str | None = None) -> list[dict]:
        with self._cond:
            return [r.view() for r in self.invocations if function is None or r.function == function]

    def wait(self, timeout: float = 30.0) -> list[dict]:
        """Wait until events already emitted have reached the triggers and no invocation is running."""
        deadline = time.monotonic() + timeout
        if self._drain is not None:
            self._drain(max(0.0, timeout))
        with self._cond:
            while any(r.status in ("running", "queued") for r in self.invocations):
                left = deadline - time.monotonic()
                if left <= 0:
                    running = [r.request_id for r in self.invocations if r.status in ("running", "queued")]
                    raise ServiceError(504, "WaitTimeout", f"{len(running)} invocation(s) still "
                                                           f"running after {timeout:g}s: "
                                                           f"{', '.join(running)}")
                self._cond.wait(left)
            return [r.view() for r in self.invocations]

    def close(self) -> None:
        """Kill what is still running (the emulator is stopping)."""
        with self._cond:
            procs = list(self._procs.values())
            warm = list(self._warm)
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        for instance in warm:
            instance.close()


# ---- installation -----------------------------------------------------------------------------------------

def code_root(settings: dict) -> Path:
    """Where relative ``code``/``fc_pythonpath`` entries start: ``settings.fc_code_root``, else the source
    checkout holding localcloud (its repository root), else the working directory."""
    if settings.get("fc_code_root"):
        return Path(str(settings["fc_code_root"])).expanduser().resolve()
    checkout = Path(__file__).resolve().parents[2]
    return checkout if (checkout / "pyproject.toml").is_file() else Path.cwd()


def _where(loc: tuple) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)


def _check(world: World, i: int, spec: FunctionSpec, root: Path, seen: set) -> list[str]:
    where = f"functions[{i}]"
    problems = []
    if not FUNCTION_NAME.fullmatch(spec.name):
        problems.append(f"{where}.name: {spec.name!r} must be 1-64 letters, digits, '_' or '-', not starting "
                        "with a digit or '-'")
    if (spec.account, spec.name) in seen:
        problems.append(f"{where}.name: function {spec.name} is declared twice in account {spec.account} "
                        "(localcloud addresses functions by account and name)")
    seen.add((spec.account, spec.name))
    if world.account(spec.account) is None:
        problems.append(f"{where}.account: account {spec.account} is not declared under accounts")
    code = Path(spec.code) if Path(spec.code).is_absolute() else root / spec.code
    module, _, attr = spec.handler.rpartition(".")
    if not module or not attr:
        problems.append(f"{where}.handler: {spec.handler!r} must be <module>.<function>, e.g. index.handler")
    elif not (code / (module.replace(".", "/") + ".py")).is_file():
        problems.append(f"{where}.code: {code} has no {module.replace('.', '/')}.py; give the "
                        f"function's code directory, absolute or relative to {root}")
    for name in spec.environment:
        if not ENV_NAME.fullmatch(name) or name.startswith("FC_"):
            problems.append(f"{where}.environment.{name}: names start with a letter, hold letters, "
                            "digits and '_', and FC_* is reserved for Function Compute")
    if len(json.dumps({k: str(v) for k, v in spec.environment.items()})) > ENV_LIMIT_BYTES:
        problems.append(f"{where}.environment: more than {ENV_LIMIT_BYTES} bytes in total")
    if spec.role:
        problems += _role_problems(world, f"{where}.role", spec.role, spec.account)
    for t, trig in enumerate(spec.triggers):
        if trig.type == "eventbridge":
            problems += pattern_problems(trig.pattern, f"{where}.triggers[{t}].pattern")
        elif trig.pattern is not None:
            problems.append(f"{where}.triggers[{t}].pattern: only eventbridge triggers have a pattern")
    return problems


def _role_problems(world: World, where: str, role_arn: str, account_id: str) -> list[str]:
    m = ROLE_ARN.fullmatch(role_arn)
    if m is None:
        return [f"{where}: {role_arn!r} is not a role ARN (acs:ram::<account>:role/<name>)"]
    if m.group(1) != account_id:
        return [f"{where}: the role must be in the function's account {account_id}, not {m.group(1)}"]
    if world.account(account_id) is None:
        return []
    try:
        role = get_role(world, account_id, m.group(2))
    except ServiceError:
        return [f"{where}: role {m.group(2)} is not declared under the account's roles"]
    if not trust_allows(role.trust_policy, service=FC_SERVICE):
        return [f"{where}: role {role.name}'s trust policy does not let {FC_SERVICE} assume it; add "
                f'"Principal": {{"Service": ["{FC_SERVICE}"]}} to an Allow sts:AssumeRole statement']
    return []


def _function(spec: FunctionSpec, root: Path, created: str) -> Function:
    code = Path(spec.code) if Path(spec.code).is_absolute() else root / spec.code
    triggers = [Trigger(t.name or f"{spec.name}-trigger-{n + 1}", t.pattern, t.type, t.enabled, t.cron,
                        t.payload,
                        t.auth_type) for n, t in enumerate(spec.triggers)]
    env = {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in spec.environment.items()}
    return Function(name=spec.name, account_id=spec.account, region=spec.region, runtime=spec.runtime,
                    code_dir=code.resolve(), handler=spec.handler, timeout=spec.timeout,
                    memory_size=spec.memory_size, role_arn=spec.role, description=spec.description,
                    environment=env, triggers=triggers, created=created)


def install(world: World, scenario_doc: dict) -> None:
    """Attach the FC backend: every ``functions:`` entry checked (all problems at once, with paths) and
    registered; ``settings.fc_pythonpath`` added to every function's PYTHONPATH."""
    doc = scenario_doc or {}
    settings = doc.get("settings") or {}
    root = code_root(settings)
    raw_path = settings.get("fc_pythonpath") or []
    if not isinstance(raw_path, list) or not all(isinstance(p, str) for p in raw_path):
        raise FunctionSpecError(["settings.fc_pythonpath: must be a list of directories"])
    pythonpath = [(Path(p) if Path(p).is_absolute() else root / p).resolve() for p in raw_path]
    problems = [f"settings.fc_pythonpath: {p} is not a directory" for p in pythonpath if not p.is_dir()]
    specs: list[FunctionSpec] = []
    seen: set = set()
    for i, raw in enumerate(doc.get("functions") or []):
        try:
            spec = FunctionSpec.model_validate(raw)
        except ValidationError as exc:
            problems += [f"functions[{i}]{_where(e['loc'])}: {e['msg']}" for e in exc.errors()]
            continue
        problems += _check(world, i, spec, root, seen)
        specs.append(spec)
    if problems:
        raise FunctionSpecError(problems)
    reuse = settings.get("fc_instance_reuse", False)
    concurrency = settings.get("fc_async_concurrency")
    if not isinstance(reuse, bool):
        problems.append("settings.fc_instance_reuse: must be true or false")
    if concurrency is not None and (isinstance(concurrency, bool) or not isinstance(concurrency, int)
                                    or concurrency < 1):
        problems.append("settings.fc_async_concurrency: must be a whole number of async invocations run "
                        "at once")
    if problems:
        raise FunctionSpecError(problems)
    created = iso(world.clock.now())
    world.backends["fc"] = FcBackend(world, [_function(s, root, created) for s in specs], pythonpath,
                                     instance_reuse=reuse, async_concurrency=concurrency)


def backend_of(world: World) -> FcBackend:
    """The world's FC backend (an empty one if the scenario loader did not install it)."""
    with world.lock:
        found: Any = world.backends.get("fc")
        if found is None:
            found = world.backends["fc"] = FcBackend(world, [], [])
        return found


def attach(world: World, *, url: str, subscribe: Callable[[Callable[[dict], None]], None],
           drain: Callable[[float], bool] | None = None) -> FcBackend:
    """Called by the server once it listens: its URL (ACRSYNC_ENDPOINT for functions) and its event stream
    (for triggers; ``drain`` lets ``wait`` see invocations of events still being delivered)."""
    backend = backend_of(world)
    backend.url = url
    backend._drain = drain
    if not backend._subscribed:
        subscribe(backend.on_event)
        backend._subscribed = True
    return backend


def detach(world: World) -> None:
    """The server is stopping: kill running functions."""
    found = world.backends.get("fc")
    if found is not None:
        found.close()

"""Run one invocation of a Python function in a subprocess, as FC's python3.x runtime runs user code.

localcloud never imports the function's code: a fresh ``python -c BOOTSTRAP`` starts with the code
directory as its working directory and a minimal environment, reads the context (one JSON line) and the
event bytes from stdin, imports the handler module, calls ``handler(event, context)`` and writes the outcome
to a private copy of stdout after a marker. File descriptor 1 is pointed at stderr before the handler
runs, so whatever the function prints or logs ends up in its logs and never in its reply.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

MARKER = "\x1elocalcloud-fc-outcome\x1e"
MAX_LOG_LINES = 2000
SUCCEEDED, FAILED, TIMEOUT = "succeeded", "failed", "timeout"

# What runs inside the subprocess. It must not depend on localcloud (the code dir is all it sees).
# The start of both bootstraps: stdout kept for the outcome line, the handler's prints go to stderr.
_PRELUDE = r'''
import base64, importlib, json, logging, os, sys, traceback
from types import SimpleNamespace

MARKER = "\x1elocalcloud-fc-outcome\x1e"
_out = os.fdopen(os.dup(1), "w", encoding="utf-8")
os.dup2(2, 1)
sys.stdout = sys.stderr
'''

# Building FC's context, encoding the reply, calling the handler: the same in both bootstraps.
_HELPERS = r'''
def _context(spec):
    fn = spec["function"]
    ctx = SimpleNamespace(request_id=spec["request_id"], region=spec["region"], account_id=spec["account_id"],
                          function=SimpleNamespace(name=fn["name"], handler=fn["handler"],
                                                   memory=fn["memory"], timeout=fn["timeout"]))
    if spec["runtime"] == "python3.12":
        ctx.function.qualifier, ctx.function.version_id = "LATEST", ""
        ctx.logger = logging.getLogger()
    else:
        cred = spec["credentials"] or {}
        ctx.credentials = SimpleNamespace(access_key_id=cred.get("access_key_id", ""),
                                          access_key_secret=cred.get("access_key_secret", ""),
                                          security_token=cred.get("security_token", ""))
        ctx.service = SimpleNamespace(name="", log_project="", log_store="", qualifier="LATEST",
                                      version_id="")
    return ctx


def _reply(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    if value is None:
        return b""
    return json.dumps(value).encode("utf-8")


def _invoke(spec, event):
    try:
        module_name, _, function_name = spec["function"]["handler"].rpartition(".")
        handler = getattr(importlib.import_module(module_name), function_name)
        body = _reply(handler(event, _context(spec)))
        return {"ok": True, "body": base64.b64encode(body).decode("ascii")}
    except BaseException as exc:
        frames = traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:])
        traceback.print_exc()
        return {"ok": False, "errorMessage": str(exc), "errorType": type(exc).__name__,
                "stackTrace": [line.rstrip("\n") for line in frames]}
'''

BOOTSTRAP = _PRELUDE + r'''
raw = sys.stdin.buffer.read()
head, _, event = raw.partition(b"\n")
spec = json.loads(head)
logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                    format="%(asctime)s " + spec["request_id"] + " [%(levelname)s] %(message)s")


''' + _HELPERS + r'''
outcome = _invoke(spec, event)
sys.stderr.flush()
_out.write(MARKER + json.dumps(outcome) + "\n")
_out.flush()
'''


@dataclass(frozen=True)
class Launch:
    """Everything one invocation needs: where the code is, what it is given, how long it may take."""

    code_dir: Path
    runtime: str
    handler: str
    timeout: float
    env: Mapping[str, str]
    # request_id, function{name,handler,memory,timeout}, credentials, region, account_id
    context: dict
    event: bytes


@dataclass
class Outcome:
    status: str                                   # succeeded | failed | timeout
    body: bytes = b""                             # the handler's reply (succeeded)
    error: dict | None = None                     # {"errorMessage", "errorType", "stackTrace"} otherwise
    logs: list[str] = field(default_factory=list)
    duration_ms: int = 0


def run(launch: Launch, on_start: Callable[[subprocess.Popen], None] | None = None) -> Outcome:
    """Run the handler once; kill it at the function's timeout (FC reports a timeout as an error)."""
    started = time.monotonic()
    spec = {**launch.context, "runtime": launch.runtime}
    stdin = json.dumps(spec).encode("utf-8") + b"\n" + launch.event
    try:
        proc = subprocess.Popen([sys.executable, "-c", BOOTSTRAP], cwd=str(launch.code_dir),
                                env=dict(launch.env),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    except OSError as exc:
        return Outcome(FAILED, error=_error(f"The runtime could not start: {exc}", "RuntimeStartFailed"))
    if on_start is not None:
        on_start(proc)
    timed_out = False
    try:
        out, err = proc.communicate(stdin, timeout=launch.timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.kill()
        out, err = proc.communicate()
    duration_ms = int((time.monotonic() - started) * 1000)
    logs = _lines(err)
    if timed_out:
        # UNVERIFIED: FC's documented message is "Function time out after"; the errorType is localcloud's.
        return Outcome(TIMEOUT, error=_error(f"Function time out after {launch.timeout:g} seconds",
                                             "FunctionTimeout"), logs=logs, duration_ms=duration_ms)
    outcome = _outcome(out.decode("utf-8", "replace"))
    if outcome is None:
        message = (f"Process exited unexpectedly before completing request (exit code {proc.returncode}); "
                   "see the invocation's logs")
        return Outcome(FAILED, error=_error(message, "ProcessExited"), logs=logs, duration_ms=duration_ms)
    if outcome.get("ok"):
        return Outcome(SUCCEEDED, body=base64.b64decode(outcome.get("body", "")), logs=logs,
                       duration_ms=duration_ms)
    error = {k: outcome.get(k) for k in ("errorMessage", "errorType", "stackTrace")}
    return Outcome(FAILED, error=error, logs=logs, duration_ms=duration_ms)


def _outcome(stdout: str) -> dict | None:
    """The last outcome line the bootstrap wrote, or None when the process died before writing one."""
    _, found, rest = stdout.rpartition(MARKER)
    if not found:
        return None
    try:
        value = json.loads(rest.splitlines()[0])
    except (ValueError, IndexError):
        return None
    return value if isinstance(value, dict) else None


def _lines(stderr: bytes) -> list[str]:
    lines = stderr.decode("utf-8", "replace").splitlines()
    if len(lines) > MAX_LOG_LINES:
        dropped = len(lines) - MAX_LOG_LINES
        lines = [f"... {dropped} earlier log lines dropped ..."] + lines[-MAX_LOG_LINES:]
    return lines


def _error(message: str, error_type: str) -> dict:
    return {"errorMessage": message, "errorType": error_type, "stackTrace": []}


def base_env(path: Mapping[str, str] | None = None) -> dict[str, str]:
    """What every function process gets besides its own variables: a PATH and UTF-8 standard streams."""
    source = os.environ if path is None else path
    return {"PATH": source.get("PATH", "/usr/bin:/bin"), "PYTHONIOENCODING": "utf-8", "LANG": "C.UTF-8"}


# ---- warm instances ---------------------------------------------------------------------------------------
# FC keeps a function instance alive between invocations and runs the next one in the same process (module
# state survives: what user code builds at import or caches globally is reused). A warm instance here is one
# long-lived ``python -c WARM_BOOTSTRAP`` that takes invocations one at a time from stdin, each framed as one
# JSON line (the context plus the event's length) and the event bytes; it answers with the same outcome line
# as BOOTSTRAP and ends each invocation's log lines with LOG_END on stderr.

LOG_END = "\x1elocalcloud-fc-log-end\x1e"

WARM_BOOTSTRAP = _PRELUDE + r'''
LOG_END = "\x1elocalcloud-fc-log-end\x1e"
_current = {"request_id": ""}


class _RequestId(logging.Filter):
    def filter(self, record):
        record.fc_request_id = _current["request_id"]
        return True


logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                    format="%(asctime)s %(fc_request_id)s [%(levelname)s] %(message)s")
for _h in logging.getLogger().handlers:
    _h.addFilter(_RequestId())


''' + _HELPERS + r'''
while True:
    head = sys.stdin.buffer.readline()
    if not head:
        break
    spec = json.loads(head)
    event = sys.stdin.buffer.read(spec["event_length"])
    _current["request_id"] = spec["request_id"]
    outcome = _invoke(spec, event)
    sys.stderr.write(LOG_END + "\n")
    sys.stderr.flush()
    _out.write(MARKER + json.dumps(outcome) + "\n")
    _out.flush()
'''


class WarmInstance:
    """One function instance kept alive between invocations (``settings.fc_instance_reuse``)."""

    def __init__(self, code_dir: Path, env: Mapping[str, str]):
        self.proc = subprocess.Popen([sys.executable, "-c", WARM_BOOTSTRAP], cwd=str(code_dir), env=dict(env),
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self._logs: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._drain_stderr, daemon=True, name="localcloud-fc-warm-logs").start()

    def _drain_stderr(self) -> None:
        for raw in iter(self.proc.stderr.readline, b""):
            self._logs.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self._logs.put(None)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def run(self, launch: Launch) -> Outcome:
        """One invocation in this instance; a timeout or a crash kills the instance (it is not reused)."""
        started = time.monotonic()
        spec = {**launch.context, "runtime": launch.runtime, "event_length": len(launch.event)}
        timer = threading.Timer(launch.timeout, self.proc.kill)
        timer.start()
        try:
            self.proc.stdin.write(json.dumps(spec).encode("utf-8") + b"\n" + launch.event)
            self.proc.stdin.flush()
            line = ""
            for raw in iter(self.proc.stdout.readline, b""):
                text = raw.decode("utf-8", "replace")
                if MARKER in text:
                    line = text
                    break
        except OSError:
            line = ""
        finally:
            timer.cancel()
        logs = self._collect(bool(line))
        duration_ms = int((time.monotonic() - started) * 1000)
        outcome = _outcome(line) if line else None
        if outcome is None:
            self.proc.kill()
            if time.monotonic() - started >= launch.timeout:
                return Outcome(TIMEOUT, error=_error(f"Function time out after {launch.timeout:g} seconds",
                                                     "FunctionTimeout"), logs=logs, duration_ms=duration_ms)
            return Outcome(FAILED, error=_error("Process exited unexpectedly before completing request; "
                                                "see the invocation's logs", "ProcessExited"), logs=logs,
                           duration_ms=duration_ms)
        if outcome.get("ok"):
            return Outcome(SUCCEEDED, body=base64.b64decode(outcome.get("body", "")), logs=logs,
                           duration_ms=duration_ms)
        error = {k: outcome.get(k) for k in ("errorMessage", "errorType", "stackTrace")}
        return Outcome(FAILED, error=error, logs=logs, duration_ms=duration_ms)

    def _collect(self, finished: bool) -> list[str]:
        lines: list[str] = []
        wait = 5.0 if finished else 0.5
        while True:
            try:
                line = self._logs.get(timeout=wait)
            except queue.Empty:
                break
            if line is None or line == LOG_END:
                break
            lines.append(line)
        if len(lines) > MAX_LOG_LINES:
            dropped = len(lines) - MAX_LOG_LINES
            lines = [f"... {dropped} earlier log lines dropped ..."] + lines[-MAX_LOG_LINES:]
        return lines

    def close(self) -> None:
        if self.alive:
            self.proc.kill()

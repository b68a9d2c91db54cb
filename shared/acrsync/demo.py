"""`make demo`: the whole system, run locally against localcloud. Every account, key and id is made up.

What it shows, in order (``STEPS``): the grant check before anything fails; pushes handled by the real
on_push function (created, covered by a rule, out of scope, blocked by a missing grant), each with its
reason; reconcile taking tasks to SUCCESS and attaching a rule's task; a task failing, retried with
back-off, and succeeding; what ACR itself does with a missing grant (a task that fails later);
`grants apply` fixing the grant and reconcile unblocking the image; a malformed event kept and
acknowledged; the ledger listed with the CLI.

localcloud runs as its own process (as a user would run it), on wall time, and plays every cloud part:
ACR emits each push as a CloudEvent, an EventBridge rule (the one s.yaml declares for pushes) invokes
the on_push function in localcloud's Function Compute runtime, which runs `functions/on_push/index.py`
in a subprocess with the function role's STS keys; the ledger is Tablestore (localcloud's).

The narration runs in this one process: the `acrsync` commands it shows are the real CLI (its entry
point, ``acrsync.cli.run``), and reconcile is the reconcile function's handler with the function role's
keys, so no step pays a Python start-up. A step is a ``(title, function)`` pair in ``STEPS``: adding one
is a self-contained change.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import yaml
from rich.console import Console
from rich.panel import Panel

from acrsync.value import Value

if TYPE_CHECKING:
    from acrsync.app import App

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".acrsync" / "demo"
SCENARIO = ROOT / "scenarios" / "demo.yaml"
EXAMPLE_CONFIG = ROOT / "examples" / "localcloud.acrsync.yaml"

# Made-up demo identities (they exist only inside localcloud's demo scenario).
ACCOUNT_A, ACCOUNT_B, ACCOUNT_C = "1111111111111111", "2222222222222222", "3333333333333333"
# acrsync never runs with an account's root key: the CLI is the RAM user acrsync-cli of account A, and
# `grants apply` in account C is run by C's administrator, the RAM user acrsync-admin.
CLI_KEYS = ("LTAIDEMOACRSYNCCLI0001", "made-up-demo-secret-acrsync-cli-not-a-real-key")
C_ADMIN_KEYS = ("LTAIDEMOACCOUNTCADMIN01", "made-up-demo-secret-account-c-admin-not-a-real-key")
FC_ROLE_ARN = f"acs:ram::{ACCOUNT_A}:role/acrsync-fc"

console = Console(highlight=False, width=max(110, Console().width))


def config_doc() -> dict[str, Any]:
    """examples/localcloud.acrsync.yaml, with the demo's short waits (back-off, blocked re-check)."""
    doc: dict[str, Any] = yaml.safe_load(EXAMPLE_CONFIG.read_text())
    doc["grants"] = {**doc.get("grants", {}), "blocked_ttl_seconds": 0}
    doc["reconcile"] = {**doc.get("reconcile", {}), "backoff_base_seconds": 1, "backoff_max_seconds": 1,
                        "max_attempts": 3}
    return doc


class LocalCloudProcess:
    """`python -m localcloud` in the background (wall clock), driven through its control API; stopped
    with SIGTERM. It has its own session, so a Ctrl-C at the terminal reaches only its parent, which
    stops it. The demo uses it, and so do the benchmarks that want the emulator out of process."""

    def __init__(self, scenario: Path):
        self.proc = subprocess.Popen([sys.executable, "-m", "localcloud", "--scenario", str(scenario),
                                      "--clock", "wall"], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": _pythonpath()}, start_new_session=True)
        assert self.proc.stdout is not None          # stdout=PIPE
        line = self.proc.stdout.readline().strip()
        if not line.startswith("localcloud listening on "):
            self.stop()
            raise RuntimeError(f"localcloud did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[1]
        self.port = int(self.url.rsplit(":", 1)[1])

    def control(self, path: str, body: dict[str, Any] | None = None, method: str = "POST") -> dict[str, Any]:
        data = None if method == "GET" else json.dumps(body or {}).encode()
        req = urllib.request.Request(f"{self.url}/_localcloud/{path}", data=data,
                                     headers={"Content-Type": "application/json"}, method=method)
        with urllib.request.urlopen(req, timeout=120) as resp:
            reply: dict[str, Any] = json.loads(resp.read())
        return reply

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)


def _pythonpath() -> str:
    parts = [str(ROOT / "shared"), str(ROOT)]
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(parts)


def demo_scenario(config: Path) -> Path:
    """scenarios/demo.yaml, its functions reading ``config``, and the EventBridge rule s.yaml gives on_push
    for pushes (sync-completed events are left to reconcile here: each would start one more function)."""
    doc = yaml.safe_load(SCENARIO.read_text())
    pattern = {"source": ["acs.cr"], "type": ["cr:Artifact:PushCompleted"]}
    for fn in doc.get("functions", []):
        fn.setdefault("environment", {})["ACRSYNC_CONFIG"] = str(config)
        if fn["name"] == "acrsync-on-push":
            fn["triggers"] = [{"type": "eventbridge", "pattern": pattern}]
    path = WORK / "scenario.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def decisions(logs: list[str]) -> list[dict[str, Any]]:
    """The decision lines (JSON) in a function's log lines."""
    out = []
    for line in logs:
        start = line.find("{")
        if start < 0:
            continue
        try:
            doc = json.loads(line[start:])
        except ValueError:
            continue
        if isinstance(doc, dict) and "decision" in doc:
            out.append(doc)
    return out


def because(d: dict[str, Any]) -> str:
    """One decision, with its reason, in words."""
    kind = d["decision"]
    if kind == "created":
        return f"sync task {d.get('task_id')} created"
    if kind == "covered":
        return f"covered by sync rule {d.get('rule_id')}: ACR replicates it, no task needed"
    if kind == "out_of_scope":
        return f"out of scope: {d.get('reason')}"
    if kind == "blocked":
        return f"blocked: {d.get('finding') or d.get('code')} (no task that must fail)"
    if kind == "duplicate":
        return "already in the ledger (a redelivered event): nothing done"
    return f"{kind}: {d.get('reason') or d.get('code') or d.get('error') or ''}".rstrip(": ")


@dataclass(repr=False, eq=False)
class Demo(Value):
    """What the steps share: localcloud, the config, the identities, and the on_push runs shown so far."""

    cloud: LocalCloudProcess
    cfg_path: Path
    cli_env: dict[str, str]                 # the CLI's keys: the RAM user acrsync-cli of account A
    seen: set[str] = field(default_factory=set)
    _app: App | None = None

    # ---- the CLI, as the user would type it ---------------------------------------------------------
    def cli(self, *args: str, env: dict[str, str] | None = None, check: bool = False) -> int:
        """Run `acrsync ARGS` (the real CLI, in this process) and show what it printed and its exit code."""
        from acrsync.cli import run

        console.print(f"[bold cyan]$ acrsync {' '.join(args)}[/bold cyan]")
        out = io.StringIO()
        with _environ({**self.cli_env, **(env or {}), "COLUMNS": str(console.width)}), \
                contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
            code = run(list(args))
        if _stopping:                             # the CLI turned the interrupt into its own exit code
            raise KeyboardInterrupt
        text = out.getvalue().rstrip()
        if text:
            console.file.write(text + "\n")       # as printed: the CLI laid it out for this width
            console.file.flush()
        console.print(f"[dim](exit {code})[/dim]")
        if check and code != 0:
            raise SystemExit(f"acrsync {' '.join(args)} failed (exit {code})")
        return code

    # ---- the cloud side -----------------------------------------------------------------------------
    def settle(self) -> list[dict[str, Any]]:
        """Wait for the functions the event rule started; return the on_push runs not shown yet."""
        runs = self.cloud.control("fc/wait", {"timeout": 120})["invocations"]
        new = [r for r in runs if r["function"] == "acrsync-on-push" and r["request_id"] not in self.seen]
        self.seen.update(r["request_id"] for r in runs)
        return new

    def push(self, ns: str, repo: str, tag: str) -> None:
        event = self.cloud.control("push", {"instance_id": "cri-demosource01", "namespace": ns, "repo": repo,
                                            "tag": tag})["event"]
        console.print(f"pushed [bold]{ns}/{repo}:{tag}[/bold] -> {event['type']} -> EventBridge -> "
                      "acrsync-on-push (localcloud's FC runtime):")
        for r in self.settle():
            if r["status"] != "succeeded":
                console.print(f"  [red]on_push {r['status']}: {r.get('error')}[/red]")
            for d in decisions(r.get("logs") or []):
                if d.get("target"):
                    console.print(f"  {d['target']}: {because(d)}")

    def advance(self, seconds: int) -> None:
        self.cloud.control("clock", {"advance_seconds": seconds})
        console.print(f"[dim](localcloud clock advanced {seconds} s: sync tasks move on)[/dim]")

    def app(self) -> App:
        """The reconcile function's code (built once, as a warm instance), here with the CLI user's keys: in
        the cloud its timer runs it as the role acrsync-fc, which only Function Compute may assume."""
        if self._app is None:
            from acrsync.app import App
            from acrsync.cloud import CloudSession
            from acrsync.config import load_config

            session = CloudSession.from_keys(*CLI_KEYS, region="cn-hangzhou")
            self._app = App.for_cli(load_config(self.cfg_path), session)
        return self._app

    def reconcile(self) -> dict[str, Any]:
        """One reconcile run, as its timer starts it; what it did, with why, per record it changed."""
        from acrsync.cli.ops import collect_decisions, local_context
        from acrsync.ledger import Record

        self.settle()
        with collect_decisions() as seen:
            s: dict[str, Any] = self.app().handle_reconcile(None, local_context("reconcile"))
        done = [f"{label} {s[k]}" for k, label in (
            ("records_seen", "open records checked"), ("created", "tasks created"), ("retried", "retried"),
            ("rule_tasks_imported", "rule tasks attached"), ("blocked", "blocked"), ("stuck_found", "stuck"),
            ("gave_up", "gave up")) if s.get(k)]
        console.print("reconcile (the function's handler, as its timer runs it): " + (", ".join(done) or
                                                                                     "nothing to do"))
        whys: dict[str, list[str]] = {}          # a record written twice in a run is one line
        for line in seen.lines:
            if line.get("decision") == "update" and line.get("key"):
                whys.setdefault(line["key"], []).append(str(line.get("why") or ""))
        for key, why in whys.items():
            rec = self.app().ledger.get(key)
            status = rec.status.value if isinstance(rec, Record) else "?"
            console.print(f"  {_short(key)}: now {status} ({'; '.join(w for w in why if w)})")
        console.print(
            "  ledger: " + ", ".join(f"{k} {v}" for k, v in sorted((s.get("counts") or {}).items()))
        )
        return s


def _short(key: str) -> str:
    from acrsync.cli.ops import short_key

    return short_key(key)


# ---- the story ----------------------------------------------------------------------------------------

def check_grants(d: Demo) -> None:
    d.cli("ledger", "init", check=True)
    d.cli("grants", "verify")


def pushes(d: Demo) -> None:
    d.push("team-a", "web", "v1.2.0")       # beijing: created; shanghai: blocked (no grant)
    d.push("team-b", "batch", "v4.0")       # beijing: covered by the PASSIVE rule team-b-to-b
    d.push("team-a", "web", "latest")       # out of scope: tag filter


def first_reconcile(d: Demo) -> None:
    d.advance(10)
    d.reconcile()
    d.cli("ledger", "list")


def retry(d: Demo) -> None:
    d.cloud.control(
        "acr/task-faults", {"repo": "api", "tag": "v2.0.0", "fail_next": 1, "issue": "NETWORK_ERROR"}
    )
    console.print(
        "[dim](localcloud: the next sync task for team-a/api:v2.0.0 will fail with NETWORK_ERROR)[/dim]"
    )
    d.push("team-a", "api", "v2.0.0")
    d.advance(10)
    d.reconcile()
    console.print("waiting for the back-off (1 s in this demo's config) ...")
    time.sleep(1.2)
    d.reconcile()
    d.advance(10)
    d.reconcile()
    d.cli("ledger", "list", "--repo", "team-a/api")


def acr_without_grant(d: Demo) -> None:
    from acrsync.cloud import CloudSession

    acr = CloudSession.from_keys(*CLI_KEYS, region="cn-hangzhou").acr("cn-hangzhou")
    repo = acr.get_repository("cri-demosource01", "team-a", "web")
    assert repo is not None, "scenarios/demo.yaml has team-a/web"
    task_id = acr.create_repo_sync_task(
        "cri-demosource01",
        repo.repo_id,
        "v1.2.0",
        target_region="cn-shanghai",
        target_instance_id="cri-demodrsite01",
        target_namespace="team-a",
        target_repo="web",
        target_tag="v1.2.0",
        target_user_id=ACCOUNT_C,
    )
    console.print(f"a manual CreateRepoSyncTask into account C, bypassing acrsync: accepted as {task_id}")
    d.advance(10)
    task = acr.get_repo_sync_task("cri-demosource01", task_id)
    console.print(f"... and later: [bold red]{task.status}[/bold red] ({task.issue}). "
                  "acrsync blocked this image instead of creating a task that must fail.")


def fix_grant(d: Demo) -> None:
    c_env = {
        "ALIBABA_CLOUD_ACCESS_KEY_ID": C_ADMIN_KEYS[0],
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": C_ADMIN_KEYS[1],
        "ALIBABA_CLOUD_SECURITY_TOKEN": "",
    }
    d.cli("grants", "apply", "--target", "shanghai-dr", env=c_env)
    d.cli("grants", "apply", "--target", "shanghai-dr", "--yes", env=c_env, check=True)
    d.cli("grants", "verify", "--target", "shanghai-dr")
    d.reconcile()
    d.advance(10)
    d.reconcile()


def malformed(d: Demo) -> None:
    d.cli("invoke", "on_push", "--event", "events/malformed.json")
    d.cli("ledger", "rejected")


def the_ledger(d: Demo) -> None:
    d.cli("ledger", "list", check=True)


def compliance(d: Demo) -> None:
    html = WORK / "compliance.html"
    d.cli("check", "--output", "html", "--out", str(html))
    d.cli("report", "show", "latest")
    console.print(
        f"[bold]compliance report (HTML): {html}[/bold] (team-a/web:v1.1.0 was pushed before acrsync "
        "was deployed: MISSING on both targets; `acrsync check --remediate` replicates it)"
    )


def backfill(d: Demo) -> None:
    d.cli("backfill", "--target", "beijing-prod")
    d.cli("backfill", "--target", "beijing-prod", "--yes", check=True)


STEPS: list[tuple[str, Callable[[Demo], None]]] = [
    ("Check the grants before anything fails", check_grants),
    ("Pushes reach the on_push function", pushes),
    ("Reconcile: task status into the ledger", first_reconcile),
    ("A task fails, is retried with back-off, and succeeds", retry),
    ("What ACR itself does when the grant is missing", acr_without_grant),
    ("Fix the grant in account C, and the blocked image goes through", fix_grant),
    ("A malformed event is kept, acknowledged, never retried", malformed),
    ("The ledger", the_ledger),
    ("Compliance: is every in-scope image on every target?", compliance),
    ("Backfill: the images pushed before acrsync was there (rules never copy them)", backfill),
]


def try_lines(cfg_path: Path) -> str:
    """Commands that work as typed from the repository root once the demo is over."""
    exe = (
        "acrsync"
        if shutil.which("acrsync")
        else os.path.relpath(Path(sys.executable).parent / "acrsync", ROOT)
    )
    cfg = os.path.relpath(cfg_path, ROOT)
    return (f"  {exe} grants print --target shanghai-dr --config {cfg}\n"
            f"  {exe} emulator --scenario scenarios/demo.yaml --port 8765 --config {cfg}\n"
            f"      then, in another shell, the commands in the README's \"Trying it on localcloud\"")


_stopping = False


def _interrupt(signum: int, frame: FrameType | None) -> None:
    """SIGTERM and Ctrl-C end the demo (the CLI step running at that moment is cut short first)."""
    global _stopping
    _stopping = True
    raise KeyboardInterrupt


def main() -> int:
    started = time.monotonic()
    for sig in (signal.SIGTERM, signal.SIGINT):          # SIGTERM ends the demo as Ctrl-C does
        signal.signal(sig, _interrupt)
    console.print(Panel.fit(
        "acrsync demo: cross-account ACR EE replication, run locally against localcloud.\n"
        f"Source: account A {ACCOUNT_A}, cri-demosource01 (cn-hangzhou, Advanced).\n"
        f"Targets: beijing-prod (account B {ACCOUNT_B}, grant set up) and shanghai-dr (account C {ACCOUNT_C},"
        " grant NOT set up).\nEvery account, key and id here is made up; nothing reaches a cloud.",
        title="acrsync"))
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    cfg_path = WORK / "acrsync.yaml"
    cfg_path.write_text(yaml.safe_dump(config_doc(), sort_keys=False))
    cloud = None
    try:
        console.print()
        console.rule("[bold]1. Start localcloud")
        cloud = LocalCloudProcess(demo_scenario(cfg_path))
        console.print(f"localcloud listening on {cloud.url} (scenario {SCENARIO.relative_to(ROOT)}, with "
                      "on_push subscribed to acs.cr push events)")
        demo = start(cloud, cfg_path)
        for n, (title, fn) in enumerate(STEPS, start=2):
            console.print()
            console.rule(f"[bold]{n}. {title}")
            fn(demo)
    except KeyboardInterrupt:
        console.print("\n[yellow]demo interrupted; localcloud stopped[/yellow]")
        return 130
    finally:
        if cloud is not None:
            cloud.stop()
    console.print(Panel.fit(f"Done in {time.monotonic() - started:.0f} s. The ledger above is Tablestore, "
                            "served by localcloud (now stopped).", title="acrsync demo"))
    console.print("Try, from this directory:", soft_wrap=True)
    console.file.write(try_lines(cfg_path) + "\n")       # unwrapped: each line works when pasted
    return 0


def start(cloud: LocalCloudProcess, cfg_path: Path) -> Demo:
    """Who is who: the functions run as the role acrsync-fc (FC hands them its keys), the CLI as a RAM
    user."""
    os.environ.update({"ACRSYNC_ENDPOINT": cloud.url, "ACRSYNC_CONFIG": str(cfg_path),
                       "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"})
    console.print(f"the functions run as role {FC_ROLE_ARN} (FC hands them its temporary keys); the CLI runs "
                  f"as the RAM user acrsync-cli of account A (key {CLI_KEYS[0]})")
    cli_env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": CLI_KEYS[0], "ALIBABA_CLOUD_ACCESS_KEY_SECRET": CLI_KEYS[1],
               "ALIBABA_CLOUD_SECURITY_TOKEN": ""}
    return Demo(cloud, cfg_path, cli_env)


if __name__ == "__main__":
    sys.exit(main())

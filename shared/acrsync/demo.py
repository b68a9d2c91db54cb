"""`make demo`: the whole system, run locally against localcloud. Every account, key and id is made up.

What it shows, in order: the grant check before anything fails; pushes handled by the real on_push
handler (created, covered by a rule, out of scope, blocked by a missing grant); reconcile taking tasks
to SUCCESS and attaching a rule's task; a task failing, retried with back-off, and succeeding; what ACR
itself does with a missing grant (a task that fails later); `grants apply` fixing the grant and
reconcile unblocking the image; a malformed event kept and acknowledged; the ledger listed with the CLI.

localcloud runs as its own process (as a user would run it: `python -m localcloud`), on wall time, and
plays every cloud part: ACR emits each push as a CloudEvent, an EventBridge rule (the one s.yaml
declares) invokes the on_push function in localcloud's Function Compute runtime, which runs
`functions/on_push/index.py` in a subprocess with the function role's STS keys; reconcile is invoked
through the FC API (InvokeFunction), as its timer would; the ledger is Tablestore (localcloud's).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".acrsync" / "demo"
SCENARIO = ROOT / "scenarios" / "demo.yaml"

# Made-up demo identities (they exist only inside localcloud's demo scenario).
ACCOUNT_A, ACCOUNT_B, ACCOUNT_C = "1111111111111111", "2222222222222222", "3333333333333333"
A_KEYS = ("LTAIDEMOACCOUNTAROOT0001", "made-up-demo-secret-account-a-root")
C_KEYS = ("LTAIDEMOACCOUNTCROOT0001", "made-up-demo-secret-account-c-root")
FC_ROLE_ARN = f"acs:ram::{ACCOUNT_A}:role/acrsync-fc"

console = Console(highlight=False, width=max(110, Console().width))


def config_doc() -> dict:
    return {
        "source": {"account_id": ACCOUNT_A, "region": "cn-hangzhou", "instance_id": "cri-demosource01"},
        "targets": [
            {"name": "beijing-prod", "account_id": ACCOUNT_B, "region": "cn-beijing",
             "instance_id": "cri-demotarget01", "namespaces": ["team-a", "team-b"], "tag_filter": r"v\d+(\.\d+)*",
             "reader_role_arn": f"acs:ram::{ACCOUNT_B}:role/acrsync-reader"},
            {"name": "shanghai-dr", "account_id": ACCOUNT_C, "region": "cn-shanghai",
             "instance_id": "cri-demodrsite01", "namespaces": ["team-a"], "tag_filter": r"v\d+(\.\d+)*",
             "reader_role_arn": f"acs:ram::{ACCOUNT_C}:role/acrsync-reader"},
        ],
        "ledger": {"backend": "tablestore", "endpoint": "https://acrsyncdemo.cn-hangzhou.ots.aliyuncs.com",
                   "instance": "acrsyncdemo", "table_prefix": "acrsync"},
        "grants": {"cache_ttl_seconds": 900, "blocked_ttl_seconds": 0},
        "reconcile": {"backoff_base_seconds": 2, "backoff_max_seconds": 4, "max_attempts": 3},
    }


class LocalCloudProcess:
    """`python -m localcloud` in the background (wall clock), driven through its control API; stopped
    with SIGTERM. The demo uses it, and so do the benchmarks that want the emulator out of process."""

    def __init__(self, scenario: Path):
        self.proc = subprocess.Popen([sys.executable, "-m", "localcloud", "--scenario", str(scenario),
                                      "--clock", "wall"], cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": _pythonpath()})
        line = self.proc.stdout.readline().strip()
        if not line.startswith("localcloud listening on "):
            self.stop()
            raise RuntimeError(f"localcloud did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[1]
        self.port = int(self.url.rsplit(":", 1)[1])

    def control(self, path: str, body: dict | None = None, method: str = "POST") -> dict:
        data = None if method == "GET" else json.dumps(body or {}).encode()
        req = urllib.request.Request(f"{self.url}/_localcloud/{path}", data=data,
                                     headers={"Content-Type": "application/json"}, method=method)
        with urllib.request.urlopen(req, timeout=30) as resp:
            return json.loads(resp.read())

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=10)


def _pythonpath() -> str:
    parts = [str(ROOT / "shared"), str(ROOT)]
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(parts)


def demo_scenario() -> Path:
    """scenarios/demo.yaml plus the EventBridge rule s.yaml gives on_push (acs.cr push and sync events)."""
    doc = yaml.safe_load(SCENARIO.read_text())
    pattern = {"source": ["acs.cr"], "type": ["cr:Artifact:PushCompleted", "cr:Artifact:SynchronizationCompleted"]}
    for fn in doc.get("functions", []):
        if fn["name"] == "acrsync-on-push":
            fn["triggers"] = [{"type": "eventbridge", "pattern": pattern}]
    path = WORK / "scenario.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def cli(*args: str, env: dict[str, str], check: bool = False) -> subprocess.CompletedProcess:
    """Run the acrsync command as a user would, and show what it printed."""
    console.print(f"[bold cyan]$ acrsync {' '.join(args)}[/bold cyan]")
    done = subprocess.run([sys.executable, "-m", "acrsync", *args], cwd=ROOT, text=True, capture_output=True,
                          env={**os.environ, **env, "PYTHONPATH": _pythonpath(), "COLUMNS": "140"})
    out = (done.stdout + done.stderr).rstrip()
    if out:
        console.file.write(out + "\n")       # as printed: the CLI already laid it out for 140 columns
        console.file.flush()
    console.print(f"[dim](exit {done.returncode})[/dim]")
    if check and done.returncode != 0:
        raise SystemExit(f"acrsync {' '.join(args)} failed")
    return done


def step(title: str) -> None:
    console.print()
    console.rule(f"[bold]{title}")


def show_summary(summary: dict) -> None:
    table = Table("target", "created", "covered", "out of scope", "blocked", "queued", "duplicate")
    for name, c in summary.get("targets", {}).items():
        table.add_row(name, *(str(c.get(k, 0)) for k in
                              ("created", "covered", "out_of_scope", "blocked", "queued", "duplicate")))
    console.print(table)
    if summary.get("rejected"):
        console.print(f"rejected events: {summary['rejected']}")


def main() -> int:
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

    step("1. Start localcloud")
    cloud = LocalCloudProcess(demo_scenario())
    try:
        console.print(f"localcloud listening on {cloud.url} (scenario {SCENARIO.relative_to(ROOT)}, with "
                      "on_push subscribed to acs.cr events)")
        return run(cloud, cfg_path)
    finally:
        cloud.stop()


def run(cloud: LocalCloudProcess, cfg_path: Path) -> int:
    from acrsync.cloud import CloudSession
    from acrsync.cloud.clients import Timeouts

    os.environ.update({"ACRSYNC_ENDPOINT": cloud.url, "ACRSYNC_CONFIG": str(cfg_path),
                       "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"})
    root_a = CloudSession.from_keys(*A_KEYS, region="cn-hangzhou")
    role = root_a.sts().assume_role(FC_ROLE_ARN, "acrsync-demo", 3600)
    console.print(f"the functions run as role acrsync-fc in account A (temporary key {role.access_key_id[:10]}...)")
    fn_env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": role.access_key_id,
              "ALIBABA_CLOUD_ACCESS_KEY_SECRET": role.access_key_secret,
              "ALIBABA_CLOUD_SECURITY_TOKEN": role.security_token or ""}
    cli("ledger", "init", env=fn_env, check=True)

    step("2. Check the grants before anything fails")
    cli("grants", "verify", env=fn_env)

    # A sync InvokeFunction waits for the function: read up to its timeout, as `acrsync invoke --remote` does.
    fc = CloudSession.from_keys(*A_KEYS, region="cn-hangzhou", timeouts=Timeouts(read=630.0)).fc("cn-hangzhou")
    seen: set[str] = set()

    def settle() -> list[dict]:
        """Wait for the functions the event rule started; return the on_push runs not shown yet."""
        runs = cloud.control("fc/wait", {"timeout": 120})["invocations"]
        new = [r for r in runs if r["function"] == "acrsync-on-push" and r["request_id"] not in seen]
        seen.update(r["request_id"] for r in runs)
        for r in new:
            if r["status"] != "succeeded":
                console.print(f"[red]on_push {r['status']}: {r.get('error')}[/red]")
        return new

    def push(ns: str, repo: str, tag: str) -> None:
        event = cloud.control("push", {"instance_id": "cri-demosource01", "namespace": ns, "repo": repo,
                                       "tag": tag})["event"]
        console.print(f"pushed [bold]{ns}/{repo}:{tag}[/bold] -> {event['type']} -> EventBridge -> "
                      "acrsync-on-push (in localcloud's FC runtime)")
        for run in settle():
            result = run.get("result")
            if isinstance(result, str):
                try:
                    result = json.loads(result)
                except ValueError:
                    result = None
            if isinstance(result, dict) and result.get("targets"):
                show_summary(result)

    def reconcile_now() -> dict:
        settle()        # sync-completed events first: their on_push runs update the ledger too
        summary = json.loads(fc.invoke_function("acrsync-reconcile", (ROOT / "events" / "timer_reconcile.json")
                                                .read_bytes()))
        keys = ("records_seen", "updated", "created", "retried", "rule_tasks_imported", "blocked", "stuck_found")
        console.print("reconcile (FC InvokeFunction, as its timer does): "
                      + ", ".join(f"{k}={summary[k]}" for k in keys))
        return summary

    def advance(seconds: int) -> None:
        cloud.control("clock", {"advance_seconds": seconds})
        console.print(f"[dim](localcloud clock advanced {seconds} s: sync tasks move on)[/dim]")

    step("3. Pushes reach the on_push function")
    push("team-a", "web", "v1.2.0")       # beijing: created; shanghai: blocked (no grant)
    push("team-b", "batch", "v4.0")       # beijing: covered by the PASSIVE rule team-b-to-b
    push("team-a", "web", "latest")       # out of scope: tag filter

    step("4. Reconcile: task status into the ledger")
    advance(10)
    reconcile_now()
    cli("ledger", "list", env=fn_env)

    step("5. A task fails, is retried with back-off, and succeeds")
    cloud.control("acr/task-faults", {"repo": "api", "tag": "v2.0.0", "fail_next": 1, "issue": "NETWORK_ERROR"})
    console.print("[dim](localcloud: the next sync task for team-a/api:v2.0.0 will fail with NETWORK_ERROR)[/dim]")
    push("team-a", "api", "v2.0.0")
    advance(10)
    reconcile_now()
    cli("ledger", "list", "--repo", "team-a/api", env=fn_env)
    console.print("waiting for the back-off ...")
    time.sleep(4.5)
    reconcile_now()
    advance(10)
    reconcile_now()
    cli("ledger", "list", "--repo", "team-a/api", env=fn_env)

    step("6. What ACR itself does when the grant is missing")
    session = CloudSession.from_keys(role.access_key_id, role.access_key_secret, role.security_token,
                                     region="cn-hangzhou")
    acr = session.acr("cn-hangzhou")
    repo = acr.get_repository("cri-demosource01", "team-a", "web")
    task_id = acr.create_repo_sync_task("cri-demosource01", repo.repo_id, "v1.2.0", target_region="cn-shanghai",
                                        target_instance_id="cri-demodrsite01", target_namespace="team-a",
                                        target_repo="web", target_tag="v1.2.0", target_user_id=ACCOUNT_C)
    console.print(f"a manual CreateRepoSyncTask into account C, bypassing acrsync: accepted as {task_id}")
    advance(10)
    task = acr.get_repo_sync_task("cri-demosource01", task_id)
    console.print(f"... and later: [bold red]{task.status}[/bold red] ({task.issue}). "
                  "acrsync blocked this image instead of creating a task that must fail.")

    step("7. Fix the grant in account C, and the blocked image goes through")
    c_env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": C_KEYS[0], "ALIBABA_CLOUD_ACCESS_KEY_SECRET": C_KEYS[1],
             "ALIBABA_CLOUD_SECURITY_TOKEN": ""}
    cli("grants", "apply", "--target", "shanghai-dr", env=c_env)
    cli("grants", "apply", "--target", "shanghai-dr", "--yes", env=c_env, check=True)
    cli("grants", "verify", "--target", "shanghai-dr", env=fn_env)
    reconcile_now()
    advance(10)
    reconcile_now()

    step("8. A malformed event is kept, acknowledged, never retried")
    bad = b'{"specversion": "1.0", "source": "acs.cr", "type": "cr:Artifact:PushCompleted", "id": "demo-broken-1",' \
          b' "data": "not an object"}'
    show_summary(json.loads(fc.invoke_function("acrsync-on-push", bad)))
    cli("ledger", "rejected", env=fn_env)

    step("9. The ledger")
    done = cli("ledger", "list", env=fn_env)

    step("10. Compliance: is every in-scope image on every target?")
    html = WORK / "compliance.html"
    cli("check", "--output", "html", "--out", str(html), env=fn_env)
    cli("report", "show", "latest", env=fn_env)
    console.print(f"[bold]compliance report (HTML): {html}[/bold] (team-a/web:v1.1.0 was pushed before acrsync "
                  "was deployed: MISSING on both targets; `acrsync check --remediate` replicates it)")

    step("11. Backfill: the images pushed before acrsync was there (rules never copy them)")
    cli("backfill", "--target", "beijing-prod", env=fn_env)
    cli("backfill", "--target", "beijing-prod", "--yes", env=fn_env, check=True)
    console.print(Panel.fit("Done. The ledger above is Tablestore, served by localcloud. Try:\n"
                            "  acrsync emulator --scenario scenarios/demo.yaml   (and point ACRSYNC_ENDPOINT at it)\n"
                            "  acrsync grants print --target shanghai-dr", title="acrsync demo"))
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())

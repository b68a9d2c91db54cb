"""`acrsync invoke` and `acrsync reconcile`: the functions' work, run from a shell.

The same code paths as in Function Compute (``acrsync.app``), with the CLI's credentials (--profile, the
ALIBABA_CLOUD_* keys or the default chain) and a local context object standing in for FC's.

Exit codes: 0 clean; 1 when an event was rejected or failed, a webhook was refused, a function raised, or
records end in ERROR or BLOCKED (or stuck, or given up); 2 usage or config errors (credentials included).
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, cast

import typer

from acrsync.cli.common import (
    EXIT_CLEAN,
    EXIT_FINDINGS,
    EXIT_USAGE,
    CloudFlags,
    ConfigOpt,
    EndpointOpt,
    Output,
    OutputOpt,
    ProfileOpt,
    RegionOpt,
    cloud_flags,
    exit_code,
    load,
    one_line,
)
from acrsync.cli.progress import Progress, progress
from acrsync.errors import AcrsyncError
from acrsync.jsonlog import JsonFormatter

if TYPE_CHECKING:
    from acrsync.app import App
    from acrsync.ledger import Ledger, Page

FUNCTIONS = ("on_push", "reconcile", "compliance")
TIMEOUTS = {"on_push": 120, "reconcile": 600, "compliance": 900}
DEPLOYED_NAMES = {"on_push": "acrsync-on-push", "reconcile": "acrsync-reconcile",   # s.yaml functionName
                  "compliance": "acrsync-compliance"}
# Outcomes of a push that a user must hear about, with the reason the handler logged.
NOTEWORTHY = (
    "rejected",
    "failed",
    "error",
    "repo_missing",
    "tag_missing",
    "blocked",
    "queued",
    "out_of_scope",
)
FAILING_STATUSES = ("ERROR", "BLOCKED")


def local_context(function: str, timeout: int | None = None) -> SimpleNamespace:
    """What FC passes as ``context``, minus credentials (the CLI session has its own)."""
    return SimpleNamespace(request_id=f"local-{uuid.uuid4()}", credentials=None, region=None,
                           function=SimpleNamespace(name=function, timeout=timeout or TIMEOUTS[function],
                                                    handler="index.handler", memory=512))


def _config_path(config_path: Path | None) -> Path | None:
    from acrsync.app import config_path as default_path

    found = config_path or default_path()
    return Path(found) if found else None


def _app(config_path: Path | None, flags: CloudFlags) -> App:
    """The functions' App with the CLI's session, once one call showed the cloud answers and takes the
    keys."""
    from acrsync.app import App
    from acrsync.cloud.probe import probe

    cfg = load(_config_path(config_path))
    session = flags.session(region=cfg.source.region)
    found = probe(session, cfg.source.region, expected_account=cfg.source.account_id)
    if found.error is not None:
        raise found.error          # the CLI's one handler: one line, exit 2 for keys, the trace with --debug
    return App.for_cli(cfg, session)


# ---- what the handlers decided, from their decision lines ------------------------------------------

class _Decisions(logging.Handler):
    """Collects acrsync's decision lines (``jsonlog.log_decision``) while a handler runs, printing none."""

    def __init__(self, on_line: Callable[[dict[str, Any]], None] | None = None) -> None:
        super().__init__(logging.INFO)
        self.setFormatter(JsonFormatter())      # the same line FC's log gets, built from the record's fields
        self.lines: list[dict[str, Any]] = []
        self._on_line = on_line

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = json.loads(self.format(record))
        except ValueError:
            return
        if isinstance(line, dict) and "decision" in line:
            self.lines.append(line)
            if self._on_line is not None:
                self._on_line(line)


@contextmanager
def collect_decisions(on_line: Callable[[dict[str, Any]], None] | None = None) -> Iterator[_Decisions]:
    logger = logging.getLogger("acrsync")
    handler = _Decisions(on_line)
    saved = (logger.level, logger.propagate)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False            # the decisions are shown as a summary, not as log lines
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def _why(line: dict[str, Any]) -> str:
    """The reason a decision line gives, in words, with the service's code when there is one."""
    words = [str(line[k]) for k in ("reason", "why", "error") if line.get(k)]
    codes = [str(line[k]) for k in ("finding", "code") if line.get(k)]
    text = "; ".join(words)
    if codes:
        text = f"{text} ({', '.join(codes)})" if text else ", ".join(codes)
    return text


_KEY = re.compile(r"^[^/]+/(?P<name>[^@]+)@(?P<digest>[^#]+)#(?P<target>.+)$")


def short_key(key: str) -> str:
    """A ledger key as `ledger list` shows it (and `ledger show` takes it): ns/repo:tag@digest12#target."""
    m = _KEY.match(key)
    if not m:
        return key
    return f"{m['name']}@{m['digest'].removeprefix('sha256:')[:12]}#{m['target']}"


def _items(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The noteworthy outcomes (see NOTEWORTHY), one per image and target, with why."""
    out = []
    for line in lines:
        d = line.get("decision")
        if d not in NOTEWORTHY:
            continue
        what = (
            line.get("image")
            or (short_key(line["key"]) if line.get("key") else "")
            or line.get("event_id")
            or ""
        )
        out.append(
            {
                "outcome": d,
                "target": line.get("target"),
                "image": what,
                "event_id": line.get("event_id"),
                "why": _why(line),
            }
        )
    return out


# ---- invoke ---------------------------------------------------------------------------------------

def _events(files: list[Path]) -> list[bytes]:
    """Each file's event; a file holding a JSON array is a batch, handled one event at a time (progress)."""
    out: list[bytes] = []
    for f in files:
        raw = f.read_bytes()
        try:
            doc = json.loads(raw)
        except ValueError:
            out.append(raw)                     # the handler rejects it with the reason
            continue
        if isinstance(doc, list) and len(doc) > 1:
            out.extend(json.dumps([e]).encode() for e in doc)
        else:
            out.append(raw)
    return out


def _merge(total: dict[str, Any], one: dict[str, Any]) -> None:
    for name, counts in one.get("targets", {}).items():
        mine = total.setdefault("targets", {}).setdefault(name, {})
        for k, v in counts.items():
            mine[k] = mine.get(k, 0) + v
    for k in ("rejected", "sync_updates", "timers"):
        total[k] = total.get(k, 0) + int(one.get(k, 0) or 0)


def _push_exit(result: dict[str, Any]) -> int:
    """1 when an event was rejected or failed, an image blocked, or the webhook reply was an error."""
    if int(result.get("statusCode", 200) or 200) >= 400:
        return EXIT_FINDINGS
    if result.get("rejected") or result.get("delivery_failed"):
        return EXIT_FINDINGS
    if any(c.get("failed") or c.get("blocked") for c in result.get("targets", {}).values()):
        return EXIT_FINDINGS
    return EXIT_CLEAN


def _on_push_local(application: App, payloads: list[bytes], bar: Progress) -> dict[str, Any]:
    from acrsync.push import DeliveryFailed

    total: dict[str, Any] = {"targets": {}, "rejected": 0, "sync_updates": 0, "timers": 0}
    failures: list[str] = []
    with collect_decisions() as seen:
        for payload in payloads:
            try:
                one = application.handle_on_push(payload, local_context("on_push"))
            except DeliveryFailed as e:
                one = e.summary.to_dict()
                failures.extend(e.errors)
            if "statusCode" in one:                       # a webhook: FC's HTTP reply
                total["statusCode"] = max(int(one["statusCode"]), int(total.get("statusCode", 0)))
                try:
                    body = json.loads(one.get("body") or "{}")
                except ValueError:
                    body = {}
                if int(one["statusCode"]) >= 400:
                    total.setdefault("http_errors", []).append({"status": one["statusCode"], **body})
                elif isinstance(body, dict):
                    _merge(total, body)
            else:
                _merge(total, one)
            bar.advance()
    total["items"] = _items(seen.lines)
    total["rejected"] = max(total["rejected"], sum(i["outcome"] == "rejected" for i in total["items"]))
    if failures:
        total["delivery_failed"] = failures
    return total


def _render_push(result: dict[str, Any]) -> None:
    for name, counts in sorted(result.get("targets", {}).items()):
        parts = [f"{k.replace('_', ' ')} {v}" for k, v in counts.items() if v]
        typer.echo(f"target {name}: " + (", ".join(parts) or "nothing to do"))
    for item in result.get("items", []):
        to = f" -> {item['target']}" if item.get("target") and "#" not in item["image"] else ""
        typer.echo(f"  {item['outcome']}: {item['image']}{to}: {item['why'] or 'no reason given'}")
    for e in result.get("http_errors", []):
        typer.echo(f"webhook refused (HTTP {e['status']}): {e.get('error', '')}")
    for f in result.get("delivery_failed", []):
        typer.echo(f"not recorded (the platform would deliver it again): {f}")
    if result.get("rejected"):
        typer.echo(
            f"{result['rejected']} event(s) rejected: `acrsync ledger rejected` shows them with the reason"
        )


# ---- reconcile ------------------------------------------------------------------------------------

class _CountingLedger:
    """The app's ledger, advancing a progress bar by the open records reconcile reads."""

    def __init__(self, inner: Ledger, bar: Progress):
        self._inner, self._bar = inner, bar

    def open_records(self, limit: int = 100, cursor: str | None = None) -> Page:
        page = self._inner.open_records(limit, cursor)
        self._bar.advance(len(page.records))
        return page

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _reconcile_once(application: App, dry_run: bool) -> dict[str, Any]:
    from acrsync.ledger import OPEN_STATUSES

    ledger = application.ledger
    counts = ledger.counts_by_status()
    open_now = sum(v for k, v in counts.items() if k in {s.value for s in OPEN_STATUSES})
    with progress("reconcile", total=open_now) as bar:
        # a delegating proxy (__getattr__): a Ledger in all but its class
        application.ledger = cast("Ledger", _CountingLedger(ledger, bar))
        try:
            return application.handle_reconcile(None, local_context("reconcile"), dry_run=dry_run)
        finally:
            application.ledger = ledger


def _reconcile_exit(summary: dict[str, Any]) -> int:
    counts = summary.get("counts") or {}
    bad = any(counts.get(s) for s in FAILING_STATUSES) or summary.get("stuck_found") or summary.get("gave_up")
    return EXIT_FINDINGS if bad else EXIT_CLEAN


SUMMARY_KEYS = (("records_seen", "records checked"), ("updated", "updated"), ("created", "tasks created"),
                ("retried", "retried"), ("rule_tasks_imported", "rule tasks attached"),
                ("adopted", "tasks adopted"), ("blocked", "blocked"), ("stuck_found", "stuck"),
                ("cancelled", "cancelled"), ("gave_up", "gave up"), ("conflicts", "write conflicts"))


def _action(p: dict[str, Any]) -> str:
    """A planned step's action as a user reads it: lifecycle's "none" with changes is a record update."""
    a = str(p.get("action") or "?")
    return "update" if a == "none" else a


def _render_reconcile(summary: dict[str, Any], dry_run: bool) -> None:
    planned = summary.get("planned") or []
    if dry_run:
        by_action = Counter(_action(p) for p in planned)
        typer.echo("dry run: nothing was changed. Would do: "
                   + (", ".join(f"{a} {n}" for a, n in sorted(by_action.items())) or "nothing"))
        for p in planned:
            what = short_key(p["key"]) if p.get("key") else f"task {p.get('task', '')}"
            why = f": {p['why']}" if p.get("why") else ""
            typer.echo(f"  {_action(p)}: {what}{why}")
        return
    done = [f"{label} {summary[k]}" for k, label in SUMMARY_KEYS if summary.get(k)]
    typer.echo(
        "reconcile: "
        + (", ".join(done) or "nothing to do")
        + ("" if summary.get("complete", True) else " (stopped at the time budget; the next run resumes)")
    )
    counts = summary.get("counts") or {}
    if counts:
        typer.echo("ledger now: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    failing = {s: counts.get(s) for s in FAILING_STATUSES if counts.get(s)}
    if failing:
        typer.echo("see them: " + "; ".join(f"acrsync ledger list --status {s.lower()}" for s in failing))


def _dry_run_json(summary: dict[str, Any]) -> dict[str, Any]:
    """--dry-run as JSON: the counts by action first, then the details."""
    planned = summary.get("planned") or []
    return {"dry_run": True, "would": dict(sorted(Counter(_action(p) for p in planned).items())),
            **summary}


# ---- remote ---------------------------------------------------------------------------------------

def _remote_region(region: str | None, config_path: Path | None) -> str:
    """--region, else the environment's region, else the config's source region (the functions run there)."""
    found = region or os.environ.get("ALIBABA_CLOUD_REGION_ID") or os.environ.get("FC_REGION")
    if found:
        return found
    path = _config_path(config_path)
    if path:
        return load(path).source.region
    typer.echo("no region for the remote function: pass --region, set ALIBABA_CLOUD_REGION_ID, or give "
               "--config (its source region is used)", err=True)
    raise typer.Exit(EXIT_USAGE)


def _invoke_remote(function: str, payload: bytes, *, flags: CloudFlags, config: Path | None, async_: bool,
                   name: str, output: Output) -> int:
    """InvokeFunction with the CLI's credentials; a function that raised exits 1 with FC's error."""
    from acrsync.cloud.clients import Timeouts
    from acrsync.cloud.errors import CloudError, is_credentials_problem

    where = _remote_region(flags.region, config)
    # A sync call waits for the function: read up to its timeout (plus a margin), never retried
    # (not idempotent).
    session = flags.session(region=where, timeouts=Timeouts(read=TIMEOUTS[function] + 30.0))
    try:
        reply = session.fc(where).invoke_function(name, payload, async_=async_)
    except CloudError as e:
        if is_credentials_problem(e):
            raise                                   # a config error: exit 2 from the CLI's one handler
        if not e.code.startswith("FunctionError."):
            typer.echo(f"acrsync: {one_line(e)}", err=True)
            return EXIT_FINDINGS
        typer.echo(
            f"{name} failed ({e.code.removeprefix('FunctionError.')}), request id {e.request_id}:", err=True
        )
        typer.echo(_pretty(e.message.encode("utf-8")), err=True)
        return EXIT_FINDINGS
    if async_:
        typer.echo(json.dumps({"function": name, "region": where, "invocation": "Async", "status": "queued"}))
        return EXIT_CLEAN
    try:
        result = json.loads(reply)
    except ValueError:
        typer.echo(reply.decode("utf-8", "replace"))
        return EXIT_CLEAN
    return _show(function, result, output, dry_run=False)


def _pretty(reply: bytes) -> str:
    """JSON replies indented, anything else as text."""
    text = reply.decode("utf-8", "replace")
    try:
        return json.dumps(json.loads(text), indent=2)
    except ValueError:
        return text


def _show(function: str, result: Any, output: Output, *, dry_run: bool) -> int:
    if not isinstance(result, dict):
        typer.echo(json.dumps(result, indent=2, default=str))
        return EXIT_CLEAN
    if function == "compliance":
        code = _compliance_exit(result)
    else:
        code = _push_exit(result) if function == "on_push" else _reconcile_exit(result)
    if output == Output.json:
        shown = _dry_run_json(result) if dry_run else result
        typer.echo(json.dumps(shown, indent=2, default=str))
    elif function == "compliance":
        _render_compliance(result)
    elif function == "on_push":
        _render_push(result)
    else:
        _render_reconcile(result, dry_run)
    return code


def _compliance_exit(result: dict[str, Any]) -> int:
    """0 compliant; 1 findings, a rejected event, or a run that could not finish (the error is in the
    result)."""
    if result.get("error") or result.get("rejected") or result.get("report_id") is None:
        return EXIT_FINDINGS
    return EXIT_CLEAN if result.get("verdict") == "compliant" else EXIT_FINDINGS


def _render_compliance(result: dict[str, Any]) -> None:
    if result.get("error"):
        typer.echo(f"compliance run failed: {result['error']}")
    if result.get("rejected"):
        typer.echo(
            f"{result['rejected']} event(s) rejected: `acrsync ledger rejected` shows them with the reason"
        )
    if result.get("report_id"):
        counts = ", ".join(f"{k} {v}" for k, v in sorted((result.get("counts") or {}).items()))
        typer.echo(f"verdict: {result.get('verdict')}" + (f" ({counts})" if counts else "")
                   + f"; report {result['report_id']}: `acrsync report show {result['report_id']}` shows it")


def register(app: typer.Typer) -> None:
    """Add `invoke` and `reconcile`."""

    @app.command()
    def invoke(
        function: str = typer.Argument(..., metavar="FUNCTION", help="on_push, reconcile or compliance"),
        event: list[Path] = typer.Option(
            ...,
            "--event",
            "-e",
            exists=True,
            dir_okay=False,
            metavar="FILE",
            help="event file (see events/); repeat it, or give a file holding a JSON array, for many events",
        ),
        output: Output = OutputOpt,
        config: Path | None = ConfigOpt,
        remote: bool = typer.Option(
            False, "--remote", help="invoke the deployed function through the FC 3.0 API instead"
        ),
        async_: bool = typer.Option(False, "--async", help="with --remote: queue it (FC replies at once)"),
        function_name: str | None = typer.Option(
            None, "--function-name", metavar="NAME", help="with --remote: the FC function (default: s.yaml's)"
        ),
        profile: str | None = ProfileOpt,
        region: str | None = typer.Option(
            None,
            "--region",
            help="region id (as ALIBABA_CLOUD_REGION_ID); with --remote the "
            "function's (default: the config's source region)",
        ),
        endpoint: str | None = EndpointOpt,
    ) -> None:
        """Run a function's handler locally on event files, as Function Compute would, or (--remote)
        invoke the deployed function with them. Each rejected or failed item is printed with its reason."""
        if function not in FUNCTIONS:
            typer.echo(f"unknown function {function!r}; choose one of {', '.join(FUNCTIONS)}", err=True)
            raise typer.Exit(EXIT_USAGE)
        if (async_ or function_name) and not remote:
            typer.echo("--async and --function-name only apply with --remote", err=True)
            raise typer.Exit(EXIT_USAGE)
        flags = cloud_flags(profile, region, endpoint)
        if remote:
            codes = [_invoke_remote(function, f.read_bytes(), flags=flags, config=config, async_=async_,
                                    name=function_name or DEPLOYED_NAMES[function], output=output)
                     for f in event]
            raise typer.Exit(max(codes))
        application = _app(config, flags)
        if function == "compliance":
            result = application.handle_compliance(
                json.loads(event[0].read_bytes()), local_context("compliance")
            )
            raise typer.Exit(_show(function, result, output, dry_run=False))
        if function == "reconcile":
            result = application.handle_reconcile(event[0].read_bytes(), local_context("reconcile"))
            raise typer.Exit(_show(function, result, output, dry_run=False))
        payloads = _events(event)
        with progress("on_push", total=len(payloads)) as bar:
            result = _on_push_local(application, payloads, bar)
        raise typer.Exit(_show(function, result, output, dry_run=False))

    @app.command(name="reconcile")
    def reconcile_cmd(
        once: bool = typer.Option(False, "--once", help="one pass, then exit (the default)"),
        watch: bool = typer.Option(
            False,
            "--watch",
            help="a pass every --interval seconds until Ctrl-C, one JSON "
            "object per pass on its own line (JSON Lines)",
        ),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="show what would change (counts first); change nothing"
        ),
        interval: float = typer.Option(
            600, "--interval", min=1, metavar="SECONDS", help="with --watch: seconds between passes"
        ),
        output: Output = OutputOpt,
        config: Path | None = ConfigOpt,
        profile: str | None = ProfileOpt,
        region: str | None = RegionOpt,
        endpoint: str | None = EndpointOpt,
    ) -> None:
        """Reconcile the ledger with ACR: task status, retries, stuck tasks, rule-made tasks."""
        if watch and (once or dry_run):
            typer.echo("--watch runs pass after pass; it does not combine with --once or --dry-run", err=True)
            raise typer.Exit(EXIT_USAGE)
        flags = cloud_flags(profile, region, endpoint)
        application = _app(config, flags)
        if not watch:
            result = _reconcile_once(application, dry_run)
            raise typer.Exit(_show("reconcile", result, output, dry_run=dry_run))
        try:
            while True:
                at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                try:
                    line = {"at": at, **_reconcile_once(application, False)}
                except AcrsyncError as e:
                    if exit_code(e) == EXIT_USAGE:
                        raise                       # keys or config: no later pass can do better
                    line = {"at": at, "error": one_line(e)}     # this pass failed; the next one may not
                typer.echo(json.dumps(line, default=str, separators=(",", ":")))
                time.sleep(interval)
        except KeyboardInterrupt:
            raise typer.Exit(EXIT_CLEAN) from None

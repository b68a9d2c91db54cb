"""`acrsync ledger init | list | show | rejected`: the replication records, as the config's ledger holds them.

Exit codes: 0 done, 1 not found or a ledger failure, 2 usage or config errors (an ambiguous short key too).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from acrsync import codec
from acrsync.cli.common import (
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
    output_opt,
)
from acrsync.cli.common import load as _config
from acrsync.config import Config
from acrsync.ledger import Ledger, LedgerError, open_ledger
from acrsync.records import Record, Status
from acrsync.value import Frozen

app = typer.Typer(no_args_is_help=True, add_completion=False, rich_markup_mode=None,
                  help="inspect and set up the replication ledger (one record per image and target)")

PROBE = "acrsync.ledger-init.probe"       # a checkpoint written and cleared by `ledger init`
DIGEST_SHOWN = 12                         # hex digits of a digest a table shows (and a short key carries)


def _ledger(cfg: Config, flags: CloudFlags) -> Ledger:
    try:
        return open_ledger(cfg.ledger, flags.session(region=cfg.source.region)
                           if cfg.ledger.backend == "tablestore" else None)
    except LedgerError as e:
        raise _fail(e, cfg) from None


def _where(cfg: Config) -> str:
    if cfg.ledger.backend == "sqlite":
        return f"sqlite {cfg.ledger.path}"
    return f"tablestore {cfg.ledger.instance} (tables {cfg.ledger.table_prefix}_*)"


class Cause(str, Enum):
    CORRUPT = "corrupt"
    CREDENTIALS = "credentials"
    PERMISSION = "permission"
    OTHER = "other"


_CORRUPT = re.compile(r"malformed|not a database|corrupt|file is encrypted|disk image", re.IGNORECASE)
_CREDENTIALS = re.compile(r"AuthFailed|InvalidAccessKeyId|SignatureDoesNotMatch|InvalidSecurityToken|"
                          r"no Alibaba Cloud credentials", re.IGNORECASE)
_PERMISSION = re.compile(r"readonly|read-only|permission|denied|unable to open|attempt to write|"
                         r"operation not permitted|access ?denied|forbidden", re.IGNORECASE)


def cause(err: BaseException) -> Cause:
    """Why a ledger cannot be used, from the backend's own words (SQLite's messages are stable)."""
    text = f"{err} {err.__cause__ or ''}"
    if _CORRUPT.search(text):
        return Cause.CORRUPT
    if _CREDENTIALS.search(text):
        return Cause.CREDENTIALS
    if _PERMISSION.search(text):
        return Cause.PERMISSION
    return Cause.OTHER


def _fail(e: BaseException, cfg: Config) -> typer.Exit:
    """One line naming the real cause and its fix; exit 1."""
    why = " ".join(str(e).split())
    found = cause(e)
    if found is Cause.CORRUPT and cfg.ledger.backend == "sqlite":
        p = cfg.ledger.path
        msg = (f"the ledger {p} is corrupt ({why}); acrsync left it untouched. Fix: move it aside "
               f"(mv {p} {p}.corrupt) and run `acrsync ledger init` again, or restore a backup")
    elif found is Cause.PERMISSION:
        msg = (
            f"cannot write the ledger {_where(cfg)} ({why}). Fix: give this user write access to the file "
            "and its directory (an immutable file shows an 'i' in `lsattr`), or point ledger.path elsewhere"
            if cfg.ledger.backend == "sqlite"
            else f"cannot write the ledger {_where(cfg)} ({why}). Fix: grant these keys write access to the "
            "Tablestore instance (`acrsync permissions`)"
        )
    elif found is Cause.CREDENTIALS:
        typer.echo(
            f"acrsync: the ledger {_where(cfg)} refused these keys ({why}). Fix: use a valid AccessKey "
            "pair of a RAM user (ALIBABA_CLOUD_ACCESS_KEY_ID/SECRET or --profile)",
            err=True,
        )
        return typer.Exit(EXIT_USAGE)
    else:
        msg = f"ledger {_where(cfg)} failed: {why}"
    typer.echo(f"acrsync: {msg}", err=True)
    return typer.Exit(EXIT_FINDINGS)


def _when(t: float | None) -> str:
    return "" if t is None else dt.datetime.fromtimestamp(t, dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _console() -> Console:
    """The terminal's width (or COLUMNS); off a terminal rich's default, never a fixed wide page."""
    return Console(soft_wrap=False, highlight=False)


def middle(text: str, width: int) -> str:
    """``text`` cut in the middle to ``width`` characters: both ends of a long name stay readable."""
    if len(text) <= width:
        return text
    if width <= 3:
        return text[:width]
    head = (width - 1) // 2
    return text[:head] + "…" + text[len(text) - (width - 1 - head):]


def short_key(r: Record) -> str:
    """The key a table shows: ``ns/repo:tag@digest12#target`` (the source instance is the config's)."""
    digest = (r.image.digest or "-").removeprefix("sha256:")[:DIGEST_SHOWN]
    return f"{r.image.repo_path}:{r.image.tag}@{digest}#{r.target}"


def _record_json(r: Record) -> dict[str, Any]:
    return {"key": r.key, "short_key": short_key(r), **codec.dump(r)}


@dataclass(frozen=True, repr=False, eq=False)
class KeyQuery(Frozen):
    """A key as a person types it: full, without the instance, with a short or ``sha256:`` digest, or a
    bare digest prefix; ``#target`` optional."""

    instance: str | None
    namespace: str | None
    repo: str | None
    tag: str | None
    digest: str | None       # a prefix of the bare hex digest
    target: str | None

    @classmethod
    def parse(cls, text: str) -> KeyQuery:
        rest, _, target = text.strip().partition("#")
        rest, _, digest = rest.partition("@")
        if ":" in rest and "/" in rest:
            path, _, tag = rest.rpartition(":")
            parts = path.split("/")
            if len(parts) not in (2, 3) or not all(parts) or not tag:
                raise ValueError(f"{text!r} is not a ledger key; keys look like NS/REPO:TAG@DIGEST#TARGET")
            inst = parts[0] if len(parts) == 3 else None
            return cls(inst, parts[-2], parts[-1], tag, _hex(digest) if digest else None, target or None)
        if rest and not digest:
            digest, rest = rest, ""
        if rest or not digest:
            raise ValueError(f"{text!r} is not a ledger key; keys look like NS/REPO:TAG@DIGEST#TARGET "
                             "(`acrsync ledger list` shows them), or give a digest prefix")
        return cls(None, None, None, None, _hex(digest), target or None)

    def matches(self, r: Record) -> bool:
        bare = (r.image.digest or "-").removeprefix("sha256:")
        return ((self.digest is None or bare.startswith(self.digest))
                and (self.target is None or r.target == self.target)
                and (self.namespace is None or (r.image.namespace, r.image.repo, r.image.tag)
                     == (self.namespace, self.repo, self.tag))
                and (self.instance is None or r.image.instance_id == self.instance))


def _hex(digest: str) -> str:
    d = digest.lower().removeprefix("sha256:")
    if d != "-" and (len(d) < 4 or not re.fullmatch(r"[0-9a-f]+", d)):
        raise ValueError(f"digest {digest!r}: give at least 4 hex digits (a 'sha256:' prefix is fine)")
    return d


def resolve(ledger: Ledger, cfg: Config, text: str) -> list[Record]:
    """Every record ``text`` can mean: the exact key, else the records a short key or digest prefix
    matches."""
    exact = ledger.get(text)
    if exact is not None:
        return [exact]
    q = KeyQuery.parse(text)
    if q.namespace is not None:
        found: Iterable[Record] = ledger.records_for(q.instance or cfg.source.instance_id, q.namespace,
                                                     q.repo or "", q.tag)
    else:
        found = ledger.all_records()
    return [r for r in found if q.matches(r)]


def fit_table(headers: list[str], rows: list[list[str]], width: int, *, drop: tuple[str, ...]) -> Table:
    """A borderless table as wide as ``width``: columns in ``drop`` go first (in that order) until the key
    fits with at least a dozen characters of its name, then the key's name is cut in the middle (its
    ``@digest#target`` end, what identifies the record, stays whole)."""
    cols = list(range(len(headers)))

    def natural(i: int) -> int:
        return max([len(headers[i])] + [len(row[i]) for row in rows])

    def others() -> int:
        return sum(natural(i) + 2 for i in cols if i != 0)

    tail = max([len(row[0].partition("@")[2]) + 1 for row in rows] or [0])
    need = min(natural(0), tail + 12)
    for name in drop:
        if width - others() >= need:
            break
        cols.remove(headers.index(name))
    budget = max(need, width - others())
    table = Table(*(headers[i] for i in cols), box=None, pad_edge=False, show_edge=False)
    for c in table.columns:
        c.no_wrap = True
    table.columns[0].min_width = min(budget, natural(0))
    for row in rows:
        name, _, rest = row[0].partition("@")
        key = middle(name, max(8, budget - len(rest) - 1)) + "@" + rest if len(row[0]) > budget else row[0]
        table.add_row(key, *(row[i] for i in cols if i != 0))
    return table


# ---- commands ------------------------------------------------------------------------------------

@app.command()
def init(config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, region: str | None = RegionOpt,
         endpoint: str | None = EndpointOpt) -> None:
    """Create the ledger tables (Tablestore) or file (SQLite), then prove a write and a read work.
    Safe to run again; a corrupt ledger is reported and never overwritten."""
    flags = cloud_flags(profile, region, endpoint)
    cfg = _config(config)
    ledger = _ledger(cfg, flags)
    try:
        ledger.init()                                        # creates what is missing, changes nothing else
        counts = ledger.counts_by_status()                   # reads every record: finds a corrupt table ...
        ledger.list_rejected(1)
        stamp = f"{time.time():.6f}"
        ledger.set_checkpoint(PROBE, stamp)                  # ... before this write,
        if ledger.get_checkpoint(PROBE) != stamp:            # which must read back
            raise LedgerError(f"a test write to {_where(cfg)} did not read back; the ledger is not usable")
        ledger.set_checkpoint(PROBE, None)
    except Exception as e:       # LedgerError, or a backend error that escaped as its own type
        raise _fail(e, cfg) from None
    total = sum(counts.values())
    typer.echo(f"ledger ready: {_where(cfg)} (write checked, {total:,} record(s))")


def _select(ledger: Ledger, cfg: Config, status: Status | None, repo: str | None, tag: str | None,
            after: str | None) -> tuple[Iterator[Record], int]:
    """The matching records in key order from just after ``after``, and how many match in all."""
    if repo is not None:
        ns, name = repo.split("/")
        every: list[Record] = ledger.records_for(cfg.source.instance_id, ns, name, tag)
        every.sort(key=lambda r: r.key)
        chosen = [r for r in every if status is None or r.status == status]
        total = len(chosen)
        return iter([r for r in chosen if after is None or r.key > after]), total
    counts = ledger.counts_by_status()
    total = counts.get(status.value, 0) if status is not None else sum(counts.values())
    source = (r for r in ledger.all_records() if after is None or r.key > after)
    return (r for r in source if status is None or r.status == status), total


@app.command("list")
def list_(status: Status | None = typer.Option(None, "--status", "-s", case_sensitive=False,
                                              help="only records with this status, e.g. error"),
          repo: str | None = typer.Option(None, "--repo", metavar="NS/REPO",
                                          help="one repository of the source instance, e.g. team-a/api"),
          tag: str | None = typer.Option(None, "--tag", help="one tag (needs --repo)"),
          output: Output = OutputOpt,
          limit: int = typer.Option(100, "--limit", "-n", min=1, help="at most this many records"),
          all_: bool = typer.Option(False, "--all", help="every matching record (no --limit)"),
          after: str | None = typer.Option(None, "--after", metavar="KEY",
                                           help="start after this key (the last one of the previous page)"),
          config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, region: str | None = RegionOpt,
          endpoint: str | None = EndpointOpt) -> None:
    """Records in key order, optionally of one repository or tag, or in one status."""
    if tag is not None and repo is None:
        typer.echo("--tag needs --repo NAMESPACE/REPO (a tag is looked up inside one repository)", err=True)
        raise typer.Exit(EXIT_USAGE)
    if repo is not None and (repo.count("/") != 1 or not all(repo.split("/"))):
        typer.echo(f"--repo {repo!r}: use NAMESPACE/REPO, e.g. team-a/api", err=True)
        raise typer.Exit(EXIT_USAGE)
    flags = cloud_flags(profile, region, endpoint)
    cfg = _config(config)
    ledger = _ledger(cfg, flags)
    start = None
    if after is not None:
        try:
            start = after if ledger.get(after) is not None else _one(resolve(ledger, cfg, after), after).key
        except LookupError:
            start = after                       # not a record (any more): a plain cursor still works
        except ValueError as e:
            typer.echo(f"--after: {e}", err=True)
            raise typer.Exit(EXIT_USAGE) from None
    try:
        found, total = _select(ledger, cfg, status, repo, tag, start)
        records: list[Record] = []
        more = False
        for r in found:
            if not all_ and len(records) >= limit:
                more = True
                break
            records.append(r)
    except LedgerError as e:
        raise _fail(e, cfg) from None
    if output == Output.json:
        typer.echo(json.dumps([_record_json(r) for r in records], indent=2))
        return
    console = _console()
    rows = []
    for r in records:
        mark = " (gave up)" if r.gave_up else " (stuck)" if r.stuck else ""
        note = (
            (r.finding.code if r.finding else None)
            or r.task_issue
            or (r.last_error.code if r.last_error else "")
        )
        rows.append([short_key(r), r.status.value + mark, str(r.attempts), r.task_id or "", r.origin.value,
                     _when(r.created_at), _when(r.next_retry_at), note or ""])
    table = fit_table(
        ["key", "status", "tries", "task", "origin", "created", "next retry", "issue / finding"],
        rows,
        console.width,
        drop=("origin", "next retry", "created", "task", "issue / finding", "tries"),
    )
    if records:
        console.print(table)
    shown = f"{len(records):,} of {total:,} record(s)"
    if more:
        shown += f"; next page: --after {short_key(records[-1])} (or --all)"
    typer.echo(shown + ("" if not records else "; `acrsync ledger show KEY` shows one in full"))


def _one(found: list[Record], text: str) -> Record:
    if not found:
        raise LookupError(text)
    if len(found) > 1:
        some = ", ".join(short_key(r) for r in found[:5]) + (" ..." if len(found) > 5 else "")
        raise ValueError(f"{text!r} matches {len(found)} records ({some}); give more of the key")
    return found[0]


@app.command()
def show(key: str = typer.Argument(..., metavar="KEY",
                                   help="a key as `ledger list` shows it (NS/REPO:TAG@DIGEST#TARGET), the "
                                        "full key, or any unique part of a digest (sha256: prefix allowed)"),
         output: Output = output_opt(Output.json),
         config: Path | None = ConfigOpt, profile: str | None = ProfileOpt, region: str | None = RegionOpt,
         endpoint: str | None = EndpointOpt) -> None:
    """One record with its task history. A short key works when it names one record."""
    flags = cloud_flags(profile, region, endpoint)
    cfg = _config(config)
    ledger = _ledger(cfg, flags)
    try:
        record = _one(resolve(ledger, cfg, key), key)
    except LookupError:
        typer.echo(f"no record {key!r}; `acrsync ledger list` shows the keys", err=True)
        raise typer.Exit(EXIT_FINDINGS) from None
    except ValueError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(EXIT_USAGE) from None
    except LedgerError as e:
        raise _fail(e, cfg) from None
    if output == Output.json:
        typer.echo(json.dumps(_record_json(record), indent=2))
        return
    fields = Table("field", "value", title=record.key, show_header=False)
    for name, value in codec.dump(record).items():
        if name not in ("history", "image") and value not in (None, [], {}):
            shown = _when(value) if name.endswith("_at") and isinstance(value, (int, float)) else value
            fields.add_row(name, shown if isinstance(shown, str) else json.dumps(shown))
    history = Table("task", "status", "created", "issue", title="attempts")
    for a in record.history:
        history.add_row(a.task_id, a.status, _when(a.created_at), a.issue or "")
    console = _console()
    console.print(fields)
    if record.history:
        console.print(history)


@app.command()
def rejected(limit: int = typer.Option(20, "--limit", "-n", min=1, help="at most this many events"),
             output: Output = OutputOpt, config: Path | None = ConfigOpt, profile: str | None = ProfileOpt,
             region: str | None = RegionOpt, endpoint: str | None = EndpointOpt) -> None:
    """Events acrsync could not use, newest first, with the reason."""
    flags = cloud_flags(profile, region, endpoint)
    cfg = _config(config)
    ledger = _ledger(cfg, flags)
    try:
        events = ledger.list_rejected(limit)
    except LedgerError as e:
        raise _fail(e, cfg) from None
    if output == Output.json:
        typer.echo(json.dumps([codec.dump(e) for e in events], indent=2))
        return
    console = _console()
    table = Table("received", "source", "id", "reason", "payload", box=None, pad_edge=False, show_edge=False)
    for name in ("received", "source", "id"):
        table.columns[[c.header for c in table.columns].index(name)].no_wrap = True
    for ev in events:
        table.add_row(_when(ev.received_at), ev.source, ev.id, ev.reason,
                      middle(" ".join(ev.payload.split()), 40))
    if events:
        console.print(table)
    typer.echo(f"{len(events)} event(s)")

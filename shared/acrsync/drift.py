"""Does a target hold what the source holds? The per-repository, paged comparison of tags.

Shared by the scheduled compliance check and the backfill. The classification is pure; the I/O around it
reads ListRepoTag pages (100 tags, the documented maximum) on each side, paced by a ``QpsLimiter`` that
the caller's worker threads share.

API (stable)::

    TagState                      MISSING | DIGEST_DIFFERS | IN_FLIGHT | OK | EXTRA
    SourceTag(tag, digest, size, pushed_ms)          one source tag as ACR reports it (size in bytes)
    TagDrift(tag, state, source, target_digest, overwrites, in_flight)
    classify(source, target_digest, *, override, in_flight) -> TagDrift          pure, one tag
    TargetIndex()                 the target repository's tags: add(tag, digest), take(tag), remaining()
    TargetSide(page_size, spill_dir) one repository's target side, in memory or spilled (context manager):
                                  add_page(tags, total), classify_page(...), finish(...) -> Iterator
    classify_page(tags, index, *, tag_regex, override, in_flight) -> list[TagDrift]   pure, one source page
    extras(index) -> list[TagDrift]                  what is left in the index: EXTRA (target only, info)
    RepoPair(source, target_namespace, target_repo, target_repo_id)   one source repository, one target
    pair_for(repo, target, target_repos) -> RepoPair  target_repos: {"ns/repo": repo_id} of the target
    pages(fetch, limiter) -> Iterator[list]           pace and page any ``fetch(page_no) -> (items, total)``
    paged(fetch, limiter) -> Iterator[(list, total)]  the same with each page's TotalCount (-1: absent)
    target_repos(acr, instance_id, limiter, namespaces=None) -> dict[str, str]    one ListRepository pass
    compare_repo(pair, *, source_acr, source_instance, target_acr, target_instance, tag_regex, override,
                 in_flight, source_limiter, target_limiter, page_size, spill_dir) -> Iterator[TagDrift]
    QpsLimiter(qps).acquire()     at most ``qps`` calls per second across threads;
                                  Limiters(qps).for_account(id)

How ``compare_repo`` reads (``TargetSide``): first every page of the target repository, then the source
repository page by page. When the target repository fits in one ListRepoTag page (the common case), its
tags stay in memory (a ``TargetIndex``: tag -> digest) and each source page is classified and yielded at
once. When it has more pages, the comparison spills to disk as a grace hash join (Shapiro, "Join processing
in database systems with large main memories", ACM TODS 11(3), 1986): both sides' (tag, digest) rows are
partitioned by a stable hash of the tag (CRC-32) into bucket files in a temporary directory of its own,
``ceil(TotalCount / page_size)`` buckets so that a target bucket holds about one page; then the buckets are
joined one at a time (the target bucket in memory, the source bucket streamed line by line). ACR does not
document the order of ListRepoTag, so the two sides cannot be merged as sorted streams; the join bounds
memory by one page per repository in flight whatever the tag count, at the cost of disk (about 100 bytes
per tag per side, removed when the comparison ends, also on errors and when the consumer stops early).
The spill goes under ``tempfile.gettempdir()`` (``TMPDIR``, else ``/tmp``); an FC 3.0 instance has a
writable temporary disk of the function's ``diskSize``, 512 MB or 10,240 MB
(https://www.alibabacloud.com/help/en/functioncompute/fc-3-0/product-overview/limits-of-usage,
https://www.alibabacloud.com/help/en/functioncompute/fc/developer-reference/api-fc-2023-03-30-struct-function).
Either way each source tag is taken out of the target side as it is seen (whether or not it passes the tag
filter), so what remains at the end is exactly the target-only tags (EXTRA). A source tag listed twice is
OK (or DIFFERS) once and MISSING the second time, on both paths. The two paths yield the same drifts in
different orders (page order, or bucket order when spilled): a consumer that lists some of them chooses by
tag name, not by arrival.

Calls are at the page floor: ceil(tags / 100) ListRepoTag pages per side (one when the repository is
empty), none on the target side when the target repository does not exist (every source tag is then
MISSING). A CloudError from either side propagates: the caller decides (compliance turns it into a
finding for that target).

States, in order of precedence for a source tag that passes the target's ``tag_filter``:
OK (the target has the tag at the same digest), IN_FLIGHT (not there or different, but an open ledger
record or task is bringing it: ``in_flight(tag, digest)`` names it), DIGEST_DIFFERS (the target has the
tag at another digest; ``overwrites`` is the target's ``override``: with false, a sync task would not
replace it), MISSING. Digests compare without the ``sha256:`` prefix.
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import tempfile
import threading
import time
import zlib
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import Enum
from types import TracebackType
from typing import Any, Protocol, TypeVar

from acrsync.config import Target
from acrsync.model import RepoInfo, TagInfo
from acrsync.scope import target_names

PAGE_SIZE = 100                   # ListRepoTag / ListRepository documented maximum
UNKNOWN_TOTAL_BUCKETS = 64        # spill buckets when ListRepoTag reports no TotalCount

T = TypeVar("T")
InFlight = Callable[[str, str], "str | None"]   # (tag, bare digest) -> what is bringing it, or None


class TagState(str, Enum):
    MISSING = "MISSING"
    DIGEST_DIFFERS = "DIGEST_DIFFERS"
    IN_FLIGHT = "IN_FLIGHT"
    OK = "OK"
    EXTRA = "EXTRA"


@dataclass(frozen=True, slots=True)
class SourceTag:
    tag: str
    digest: str                   # bare hex
    size: int = 0                 # bytes, as ACR reports ImageSize
    pushed_ms: int = 0            # ImageUpdate, epoch milliseconds

    @classmethod
    def of(cls, t: TagInfo) -> SourceTag:
        return cls(t.tag, bare(t.digest), t.size, t.updated_ms)


@dataclass(frozen=True, slots=True)
class TagDrift:
    tag: str
    state: TagState
    source: SourceTag | None = None        # None for EXTRA
    target_digest: str | None = None       # bare hex; None when the target lacks the tag
    overwrites: bool = False               # DIGEST_DIFFERS: the target's override (would a task replace it)
    in_flight: str | None = None           # IN_FLIGHT: the record or task bringing it


def bare(digest: str | None) -> str:
    return (digest or "").removeprefix("sha256:")


# ---- pure classification -------------------------------------------------------------------------

def classify(source: SourceTag, target_digest: str | None, *, override: bool,
             in_flight: str | None) -> TagDrift:
    """One source tag against what the target holds under the same name."""
    target_digest = bare(target_digest) if target_digest is not None else None
    if target_digest is not None and target_digest == source.digest:
        return TagDrift(source.tag, TagState.OK, source, target_digest)
    if in_flight:
        return TagDrift(source.tag, TagState.IN_FLIGHT, source, target_digest, override, in_flight)
    if target_digest is not None:
        return TagDrift(source.tag, TagState.DIGEST_DIFFERS, source, target_digest, override)
    return TagDrift(source.tag, TagState.MISSING, source, None)


class TargetIndex:
    """The target repository's tags (tag -> bare digest); source tags are taken out as they are seen.

    Compact, because it is the one thing a comparison holds that grows with the tag count: names back to
    back in one bytearray, a 64-bit hash and a 32-byte digest per tag, and an open-addressing table of
    slot numbers: about 75 bytes per tag (measured) where a dict of strings takes about 205.
    """

    __slots__ = ("_digests", "_hashes", "_left", "_name_at", "_names", "_odd", "_seen", "_slots")

    _MASK = (1 << 64) - 1

    def __init__(self) -> None:
        self._names = bytearray()           # utf-8 names, back to back
        self._name_at = array("L", [0])     # name i is _names[_name_at[i]:_name_at[i + 1]]
        self._hashes = array("Q")
        self._digests = bytearray()         # 32 bytes per tag
        self._odd: dict[int, str] = {}      # digests that are not 64 hex characters, by tag number
        self._seen = bytearray()
        self._slots = array("l", [-1]) * 8  # tag numbers; -1 is free
        self._left = 0

    def _name(self, i: int) -> str:
        return self._names[self._name_at[i]:self._name_at[i + 1]].decode("utf-8")

    def _find(self, tag: str, h: int) -> tuple[int, int]:
        """(slot, tag number or -1): linear probing from the hash."""
        mask = len(self._slots) - 1
        slot = h & mask
        while True:
            i = self._slots[slot]
            if i < 0 or (self._hashes[i] == h and self._name(i) == tag):
                return slot, i
            slot = (slot + 1) & mask

    def _grow(self) -> None:
        size = len(self._slots) * 2
        self._slots = array("l", [-1]) * size
        mask = size - 1
        for i, h in enumerate(self._hashes):
            slot = h & mask
            while self._slots[slot] >= 0:
                slot = (slot + 1) & mask
            self._slots[slot] = i

    @staticmethod
    def _pack(digest: str) -> bytes | None:
        try:
            raw = bytes.fromhex(digest)
        except ValueError:
            return None
        return raw if len(raw) == 32 else None

    def add(self, tag: str, digest: str) -> None:
        digest = bare(digest)
        h = hash(tag) & self._MASK
        slot, i = self._find(tag, h)
        packed = self._pack(digest)
        if i < 0:
            i = len(self._hashes)
            self._names += tag.encode("utf-8")
            self._name_at.append(len(self._names))
            self._hashes.append(h)
            self._digests += bytes(32)
            self._seen.append(0)
            self._left += 1
            self._slots[slot] = i
            if 2 * len(self._hashes) > len(self._slots):
                self._grow()
        self._digests[32 * i:32 * i + 32] = packed or bytes(32)
        if packed is None:
            self._odd[i] = digest
        else:
            self._odd.pop(i, None)

    def _digest(self, i: int) -> str:
        odd = self._odd.get(i)
        return odd if odd is not None else self._digests[32 * i:32 * i + 32].hex()

    def take(self, tag: str) -> str | None:
        _, i = self._find(tag, hash(tag) & self._MASK)
        if i < 0 or self._seen[i]:
            return None
        self._seen[i] = 1
        self._left -= 1
        return self._digest(i)

    def items(self) -> Iterator[tuple[str, str]]:
        """Every (tag, digest) added, in the order first added, taken or not."""
        return ((self._name(i), self._digest(i)) for i in range(len(self._hashes)))

    def remaining(self) -> list[tuple[str, str]]:
        return sorted((self._name(i), self._digest(i)) for i in range(len(self._hashes)) if not self._seen[i])

    def __len__(self) -> int:
        return self._left


def _classify_one(src: SourceTag, target_digest: str | None, *, override: bool,
                  in_flight: InFlight) -> TagDrift:
    return classify(src, target_digest, override=override,
                    in_flight=in_flight(src.tag, src.digest) if target_digest != src.digest else None)


def classify_page(tags: Iterable[TagInfo | SourceTag], index: TargetIndex, *, tag_regex: re.Pattern[str],
                  override: bool, in_flight: InFlight) -> list[TagDrift]:
    """Classify one page of source tags; tags failing ``tag_regex`` (full match) are out of scope."""
    out = []
    for t in tags:
        src = t if isinstance(t, SourceTag) else SourceTag.of(t)
        target_digest = index.take(src.tag)
        if tag_regex.fullmatch(src.tag) is None:
            continue
        out.append(_classify_one(src, target_digest, override=override, in_flight=in_flight))
    return out


def extras(index: TargetIndex) -> list[TagDrift]:
    """Tags only the target has (for information: acrsync never deletes)."""
    return [TagDrift(tag, TagState.EXTRA, None, digest) for tag, digest in index.remaining()]


# ---- bounded memory: the target side, in memory or spilled -----------------------------------------

def bucket_of(tag: str, buckets: int) -> int:
    """Stable across processes and runs (unlike ``hash``), so a spill is reproducible."""
    return zlib.crc32(tag.encode("utf-8")) % buckets


class _Buckets:
    """Append-only bucket files of JSON lines, one per bucket number, in a directory owned by the caller.

    No file stays open between writes: each page's rows are grouped by bucket and appended with one
    ``os.write`` per bucket, so neither file descriptors nor write buffers grow with the bucket count.
    """

    def __init__(self, directory: str, side: str, count: int):
        self.directory = directory
        self.side = side
        self.count = count

    def path(self, bucket: int) -> str:
        return os.path.join(self.directory, f"{self.side}-{bucket:06d}.jsonl")

    def write(self, rows: Iterable[tuple[str, list[Any]]]) -> None:
        """Append ``(tag, row)`` pairs, each ``row`` to the bucket of its tag."""
        groups: dict[int, list[str]] = {}
        for tag, row in rows:
            groups.setdefault(bucket_of(tag, self.count), []).append(json.dumps(row, separators=(",", ":")))
        for bucket, lines in groups.items():
            data = ("\n".join(lines) + "\n").encode("utf-8")
            fd = os.open(self.path(bucket), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
            finally:
                os.close(fd)

    def read(self, bucket: int) -> Iterator[list[Any]]:
        """The rows of one bucket in the order written, one line at a time."""
        try:
            f = open(self.path(bucket), encoding="utf-8")
        except FileNotFoundError:
            return
        with f:
            for line in f:
                yield json.loads(line)


class TargetSide:
    """One repository's target tags for one comparison, in memory bounded by about one page.

    Feed the target's ListRepoTag pages with ``add_page``, then the source pages with ``classify_page``,
    then drain ``finish``. While the target fits in one page, everything stays in memory: ``classify_page``
    returns the page classified, ``finish`` the EXTRA tags. From the target's second page on, the side is
    spilled (module docstring: a grace hash join in a temporary directory under ``spill_dir``, default
    ``tempfile.gettempdir()``): ``classify_page`` only appends the source page to the bucket files and
    returns nothing; ``finish`` yields every classified source tag and then EXTRA tags, bucket by bucket.
    Use it as a context manager: the directory is removed on exit, whatever happened.
    """

    def __init__(self, *, page_size: int = PAGE_SIZE, spill_dir: str | None = None):
        self.page_size = max(1, page_size)
        self.spill_dir = spill_dir
        self._index = TargetIndex()
        self._pages = 0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._target: _Buckets | None = None
        self._source: _Buckets | None = None

    @property
    def directory(self) -> str | None:
        """The spill directory while spilled, else None."""
        return self._tmp.name if self._tmp is not None else None

    @property
    def buckets(self) -> int:
        return self._target.count if self._target is not None else 0

    def __enter__(self) -> TargetSide:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Remove the spill directory (idempotent)."""
        tmp, self._tmp = self._tmp, None
        self._target = self._source = None
        if tmp is not None:
            tmp.cleanup()

    def _spill(self, total: int) -> _Buckets:
        count = math.ceil(total / self.page_size) if total >= 0 else UNKNOWN_TOTAL_BUCKETS
        self._tmp = tempfile.TemporaryDirectory(prefix="acrsync-drift-", dir=self.spill_dir)
        self._target = _Buckets(self._tmp.name, "target", max(2, count))
        self._source = _Buckets(self._tmp.name, "source", self._target.count)
        held, self._index = self._index, TargetIndex()
        self._target.write((tag, [tag, digest]) for tag, digest in held.items())
        return self._target

    def add_page(self, tags: Sequence[TagInfo], total: int = -1) -> None:
        """One target ListRepoTag page and the TotalCount it reported (-1: absent)."""
        self._pages += 1
        if self._target is None and self._pages == 1:
            for t in tags:
                self._index.add(t.tag, t.digest)
            return
        buckets = self._target or self._spill(max(total, self._pages * len(tags)) if total >= 0 else -1)
        buckets.write((t.tag, [t.tag, bare(t.digest)]) for t in tags)

    def classify_page(self, tags: Sequence[TagInfo | SourceTag], *, tag_regex: re.Pattern[str],
                      override: bool, in_flight: InFlight) -> list[TagDrift]:
        """One source page: classified now (in memory) or appended to the spill (returns [])."""
        if self._source is None:
            return classify_page(tags, self._index, tag_regex=tag_regex, override=override,
                                 in_flight=in_flight)
        rows = []
        for t in tags:
            src = t if isinstance(t, SourceTag) else SourceTag.of(t)
            rows.append((src.tag, [src.tag, src.digest, src.size, src.pushed_ms]))
        self._source.write(rows)
        return []

    def finish(self, *, tag_regex: re.Pattern[str], override: bool,
               in_flight: InFlight) -> Iterator[TagDrift]:
        """After the last source page: the spilled source tags classified, then the EXTRA tags."""
        if self._target is None or self._source is None:
            yield from extras(self._index)
            return
        target, source = self._target, self._source
        for bucket in range(target.count):
            held: dict[str, str] = {}
            for tag, digest in target.read(bucket):
                held[tag] = digest
            for tag, digest, size, pushed_ms in source.read(bucket):
                target_digest = held.pop(tag, None)
                if tag_regex.fullmatch(tag) is None:
                    continue
                yield _classify_one(SourceTag(tag, digest, size, pushed_ms), target_digest,
                                    override=override, in_flight=in_flight)
            for tag, digest in sorted(held.items()):
                yield TagDrift(tag, TagState.EXTRA, None, digest)


# ---- repositories --------------------------------------------------------------------------------

@dataclass(frozen=True)
class RepoPair:
    source: RepoInfo
    target_namespace: str
    target_repo: str
    target_repo_id: str | None            # None: the target has no such repository (yet)

    @property
    def target_path(self) -> str:
        return f"{self.target_namespace}/{self.target_repo}"


def pair_for(repo: RepoInfo, target: Target, target_repo_ids: dict[str, str]) -> RepoPair:
    ns, name = target_names(target, repo.namespace, repo.name)
    return RepoPair(repo, ns, name, target_repo_ids.get(f"{ns}/{name}"))


# ---- pacing --------------------------------------------------------------------------------------

class QpsLimiter:
    """At most ``qps`` calls per second, shared by threads: each ``acquire`` takes the next free slot.

    Slots are handed out under a lock and slept for outside it, so waiting threads do not serialise on
    the lock. ``qps`` <= 0 means no limit.
    """

    def __init__(self, qps: float, *, now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.interval = 1.0 / qps if qps > 0 else 0.0
        self._now = now
        self._sleep = sleep
        self._next = 0.0
        self._lock = threading.Lock()
        self.acquired = 0

    def acquire(self) -> float:
        """Wait for a slot; return how long this caller waited (seconds)."""
        if self.interval == 0.0:
            with self._lock:
                self.acquired += 1
            return 0.0
        with self._lock:
            now = self._now()
            slot = max(now, self._next)
            self._next = slot + self.interval
            self.acquired += 1
        wait = slot - now
        if wait > 0:
            self._sleep(wait)
        return wait


class Limiters:
    """One ``QpsLimiter`` per account (ACR's API limits are per account), created on first use."""

    def __init__(self, qps: float, **kw: Any):
        self.qps = qps
        self._kw = kw
        self._by_account: dict[str, QpsLimiter] = {}
        self._lock = threading.Lock()

    def for_account(self, account_id: str) -> QpsLimiter:
        with self._lock:
            found = self._by_account.get(account_id)
            if found is None:
                found = self._by_account[account_id] = QpsLimiter(self.qps, **self._kw)
            return found


# ---- I/O: paged reads ----------------------------------------------------------------------------

class TagPager(Protocol):
    def list_repo_tag_page(self, instance_id: str, repo_id: str, page_no: int, *,
                           page_size: int = PAGE_SIZE) -> tuple[list[TagInfo], int]: ...


class RepoPager(Protocol):
    def list_repository_page(self, instance_id: str, page_no: int, *, namespace: str | None = None,
                             page_size: int = PAGE_SIZE) -> tuple[list[RepoInfo], int]: ...


def _more(seen: int, page_len: int, total: int, page_size: int = PAGE_SIZE) -> bool:
    if page_len == 0:
        return False
    return seen < total if total >= 0 else page_len >= page_size


def paged(fetch: Callable[[int], tuple[list[T], int]], limiter: QpsLimiter, *,
          page_size: int = PAGE_SIZE) -> Iterator[tuple[list[T], int]]:
    """Pages from ``fetch(page_no)`` with their TotalCount, each call after ``limiter.acquire()``."""
    page_no, seen = 1, 0
    while True:
        limiter.acquire()
        items, total = fetch(page_no)
        seen += len(items)
        yield items, total
        if not _more(seen, len(items), total, page_size):
            return
        page_no += 1


def pages(fetch: Callable[[int], tuple[list[T], int]], limiter: QpsLimiter, *,
          page_size: int = PAGE_SIZE) -> Iterator[list[T]]:
    """Pages from ``fetch(page_no)``, each call after ``limiter.acquire()``; stops on TotalCount."""
    for items, _total in paged(fetch, limiter, page_size=page_size):
        yield items


def target_repos(acr: RepoPager, instance_id: str, limiter: QpsLimiter,
                 namespaces: Iterable[str] | None = None) -> dict[str, str]:
    """``{"ns/repo": repo_id}`` of an instance: one ListRepository paging pass (per namespace if given)."""
    out: dict[str, str] = {}
    for ns in (list(namespaces) if namespaces is not None else [None]):
        for page in pages(functools.partial(acr.list_repository_page, instance_id, namespace=ns), limiter):
            for r in page:
                out[r.path] = r.repo_id
    return out


def compare_repo(pair: RepoPair, *, source_acr: TagPager, source_instance: str, target_acr: TagPager,
                 target_instance: str, tag_regex: re.Pattern[str], override: bool, in_flight: InFlight,
                 source_limiter: QpsLimiter, target_limiter: QpsLimiter, page_size: int = PAGE_SIZE,
                 spill_dir: str | None = None) -> Iterator[TagDrift]:
    """Every in-scope source tag of ``pair`` classified, then the target-only tags (EXTRA); streamed.

    Memory is about one page whatever the tag count (``TargetSide``); a spill is removed when the
    iterator ends, raises or is closed early."""
    with TargetSide(page_size=page_size, spill_dir=spill_dir) as side:
        if pair.target_repo_id is not None:
            fetch = functools.partial(target_acr.list_repo_tag_page, target_instance, pair.target_repo_id,
                                      page_size=page_size)
            for page, total in paged(fetch, target_limiter, page_size=page_size):
                side.add_page(page, total)
        fetch = functools.partial(source_acr.list_repo_tag_page, source_instance, pair.source.repo_id,
                                  page_size=page_size)
        for page in pages(fetch, source_limiter, page_size=page_size):
            yield from side.classify_page(page, tag_regex=tag_regex, override=override, in_flight=in_flight)
        yield from side.finish(tag_regex=tag_regex, override=override, in_flight=in_flight)

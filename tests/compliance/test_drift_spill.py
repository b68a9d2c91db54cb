"""drift's bounded memory: a target side past one page spills to a grace hash join on disk.

The two paths (all in memory, spilled) must classify the same input identically; the spill must remove
its files however the comparison ends; and the peak memory of a spilled comparison must not grow with
the tag count as the all-in-memory index does.
"""

from __future__ import annotations

import math
import os
import random
import re
import tracemalloc
from collections import Counter

import pytest

from acrsync import drift
from acrsync.compliance import entry
from acrsync.compliance.run import Options, Tally
from acrsync.drift import QpsLimiter, RepoPair, TagDrift, TagState, TargetSide, compare_repo
from acrsync.model import RepoInfo, TagInfo
from tests.compliance.helpers import config_doc, make_app, scenario

ALL = re.compile(".*")
REPO = RepoInfo(instance_id="cri-s", repo_id="s1", namespace="ns", name="app")


class Pager:
    """ListRepoTag pages of ``page_size`` in a fixed order with TotalCount; counts the calls."""

    def __init__(self, tags: list[TagInfo], fail_on_page: int | None = None):
        self.tags = tags
        self.fail_on_page = fail_on_page
        self.calls = 0

    def list_repo_tag_page(self, instance_id, repo_id, page_no, *, page_size=100):
        self.calls += 1
        if page_no == self.fail_on_page:
            raise RuntimeError("throttled after retries")
        return self.tags[(page_no - 1) * page_size: page_no * page_size], len(self.tags)


def compare(source, target, *, page_size, spill_dir=None, regex=ALL, override=False, in_flight=None,
            target_repo_id="t1"):
    pair = RepoPair(REPO, "ns", "app", target_repo_id)
    return compare_repo(pair, source_acr=Pager(source), source_instance="cri-s", target_acr=Pager(target),
                        target_instance="cri-t", tag_regex=regex, override=override,
                        in_flight=in_flight or (lambda tag, digest: None),
                        source_limiter=QpsLimiter(0), target_limiter=QpsLimiter(0), page_size=page_size,
                        spill_dir=spill_dir)


def canonical(drifts: list[TagDrift]) -> list[str]:
    """Order-free view of a comparison: every drift, fields included, as sorted text."""
    return sorted(repr(d) for d in drifts)


def digest(n: int) -> str:
    return "sha256:" + f"{n:064x}"


def mixed_world(seed: int, n: int) -> tuple[list[TagInfo], list[TagInfo]]:
    """Both sides with every case: same, other digest, source only, target only, filtered out, listed
    twice on either side (also across pages), odd digests; in a shuffled order."""
    rnd = random.Random(seed)
    source, target = [], []
    for i in range(n):
        name = f"v{i}" if i % 7 else f"rc-{i}"                # rc-*: out of the tag filter below
        kind = rnd.randrange(6)
        source.append(TagInfo(tag=name, digest=digest(i), size=i, updated_ms=1000 + i))
        if kind == 0:
            target.append(TagInfo(tag=name, digest=digest(i)))            # OK (prefix on both)
        elif kind == 1:
            target.append(TagInfo(tag=name, digest=f"{i:064x}"))          # OK, bare on the target
        elif kind == 2:
            target.append(TagInfo(tag=name, digest=digest(i + 10**6)))    # DIGEST_DIFFERS
        elif kind == 3:
            target.append(TagInfo(tag=name, digest="odd-" + str(i) if i % 2 else ""))   # not 64 hex
        # kind 4, 5: MISSING (or IN_FLIGHT)
    for i in range(n // 5):
        target.append(TagInfo(tag=f"only-{i}", digest=digest(i)))          # EXTRA
    for i in range(0, n, 9):                                               # listed twice
        source.append(TagInfo(tag=source[i].tag, digest=source[i].digest, size=1, updated_ms=2))
        target.append(TagInfo(tag=f"v{i + 1}", digest=digest(i + 1)))       # the last listing wins
    rnd.shuffle(source)
    rnd.shuffle(target)
    return source, target


def in_flight(tag: str, digest_: str) -> str | None:
    return "QUEUED" if tag.endswith("3") else None


class TestSameAnswerBothWays:
    @pytest.mark.parametrize("seed", range(6))
    @pytest.mark.parametrize("override", [False, True])
    def test_spilled_equals_in_memory(self, tmp_path, seed, override):
        source, target = mixed_world(seed, 300)
        regex = re.compile(r"v.*")
        memory = list(compare(source, target, page_size=10_000, spill_dir=str(tmp_path), regex=regex,
                              override=override, in_flight=in_flight))
        assert os.listdir(tmp_path) == []                     # one page: nothing on disk
        spilled = list(compare(source, target, page_size=7, spill_dir=str(tmp_path), regex=regex,
                               override=override, in_flight=in_flight))
        assert canonical(spilled) == canonical(memory)
        states = Counter(d.state for d in memory)
        assert all(states[s] for s in TagState), states       # the world does hold every state
        assert not any(d.tag.startswith("rc-") for d in memory if d.state is not TagState.EXTRA)
        assert os.listdir(tmp_path) == []

    def test_a_tag_listed_twice_on_the_source_is_found_once(self, tmp_path):
        source = [TagInfo(tag="a", digest="1"), TagInfo(tag="b", digest="2"), TagInfo(tag="a", digest="1")]
        target = [TagInfo(tag="a", digest="1"), TagInfo(tag="b", digest="9"), TagInfo(tag="c", digest="3")]
        for page_size in (100, 1):
            out = [(d.tag, d.state) for d in compare(source, target, page_size=page_size,
                                                     spill_dir=str(tmp_path))]
            assert sorted(out) == [("a", TagState.MISSING), ("a", TagState.OK),
                                   ("b", TagState.DIGEST_DIFFERS), ("c", TagState.EXTRA)]

    def test_an_empty_digest_is_kept_as_empty_on_both_paths(self, tmp_path):
        source = [TagInfo(tag="e", digest=""), TagInfo(tag="f", digest="")]
        target = [TagInfo(tag="e", digest=""), TagInfo(tag="f", digest="0" * 64), TagInfo(tag="g", digest="")]
        for page_size in (100, 1):
            drifts = compare(source, target, page_size=page_size, spill_dir=str(tmp_path))
            out = sorted((d.tag, d.state, d.target_digest) for d in drifts)
            assert out == [("e", TagState.OK, ""), ("f", TagState.DIGEST_DIFFERS, "0" * 64),
                           ("g", TagState.EXTRA, "")]

    def test_no_target_repository_is_all_missing_without_disk(self, tmp_path):
        out = list(compare([TagInfo(tag=f"v{i}", digest="1") for i in range(50)], [], page_size=5,
                           spill_dir=str(tmp_path), target_repo_id=None))
        assert {d.state for d in out} == {TagState.MISSING} and len(out) == 50
        assert os.listdir(tmp_path) == []

    def test_a_target_of_one_page_streams_the_source_without_disk(self, tmp_path):
        it = compare([TagInfo(tag=f"v{i}", digest="1") for i in range(50)],
                     [TagInfo(tag="v1", digest="1")], page_size=5, spill_dir=str(tmp_path))
        assert next(it).tag == "v0"                           # yielded before the second source page
        assert os.listdir(tmp_path) == []
        rest = list(it)
        assert len(rest) == 49 and os.listdir(tmp_path) == []


class TestSpillFiles:
    def test_bucket_count_follows_total_count(self, tmp_path):
        with TargetSide(page_size=10, spill_dir=str(tmp_path)) as side:
            side.add_page([TagInfo(tag=f"v{i}", digest="1") for i in range(10)], 95)
            assert side.directory is None and side.buckets == 0           # one page: in memory
            side.add_page([TagInfo(tag=f"w{i}", digest="1") for i in range(10)], 95)
            assert side.buckets == math.ceil(95 / 10)
            assert side.directory is not None and os.path.dirname(side.directory) == str(tmp_path)
            files = os.listdir(side.directory)
            assert files and all(f.startswith("target-") for f in files)
        assert os.listdir(tmp_path) == []

    def test_removed_when_done(self, tmp_path):
        source, target = mixed_world(1, 120)
        assert len(list(compare(source, target, page_size=10, spill_dir=str(tmp_path)))) > 120
        assert os.listdir(tmp_path) == []

    def test_removed_when_the_consumer_stops_early(self, tmp_path):
        source, target = mixed_world(2, 120)
        it = compare(source, target, page_size=10, spill_dir=str(tmp_path))
        next(it)
        (spill,) = os.listdir(tmp_path)
        assert os.listdir(tmp_path / spill)                   # both sides' buckets are on disk
        it.close()
        assert os.listdir(tmp_path) == []

    def test_removed_when_the_consumer_raises(self, tmp_path):
        source, target = mixed_world(3, 120)

        class Stop(Exception):
            pass

        with pytest.raises(Stop):
            for _ in compare(source, target, page_size=10, spill_dir=str(tmp_path)):
                raise Stop
        assert os.listdir(tmp_path) == []

    def test_removed_when_a_page_read_fails(self, tmp_path):
        source, target = mixed_world(4, 120)
        pair = RepoPair(REPO, "ns", "app", "t1")
        it = compare_repo(pair, source_acr=Pager(source, fail_on_page=3), source_instance="cri-s",
                          target_acr=Pager(target), target_instance="cri-t", tag_regex=ALL, override=False,
                          in_flight=lambda tag, d: None, source_limiter=QpsLimiter(0),
                          target_limiter=QpsLimiter(0), page_size=10, spill_dir=str(tmp_path))
        with pytest.raises(RuntimeError, match="throttled"):
            list(it)
        assert os.listdir(tmp_path) == []

    def test_unknown_total_count_still_spills(self, tmp_path):
        with TargetSide(page_size=10, spill_dir=str(tmp_path)) as side:
            side.add_page([TagInfo(tag="a", digest="1")], -1)
            side.add_page([TagInfo(tag="b", digest="2")], -1)
            assert side.buckets == drift.UNKNOWN_TOTAL_BUCKETS
            side.classify_page([TagInfo(tag="b", digest="2")], tag_regex=ALL, override=False,
                               in_flight=lambda tag, d: None)
            out = list(side.finish(tag_regex=ALL, override=False, in_flight=lambda tag, d: None))
            assert sorted((d.tag, d.state) for d in out) == [("a", TagState.EXTRA), ("b", TagState.OK)]
        assert os.listdir(tmp_path) == []


def test_memory_does_not_grow_with_the_target(tmp_path, monkeypatch):
    """5,000 tags on each side at ListRepoTag's 100 per page: the peak stays near one page's worth.

    The all-in-memory index alone (``TargetIndex``, about 75 bytes a tag) would take about 400 KB here;
    the spilled comparison holds one target bucket (about 100 tags) and one source row at a time."""
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    n = 5000
    source = [TagInfo(tag=f"release-{i:05d}", digest=digest(i), size=i, updated_ms=i) for i in range(n)]
    target = [TagInfo(tag=f"release-{i:05d}", digest=digest(i if i % 10 else -i - 1)) for i in range(n)]
    pair = RepoPair(REPO, "ns", "app", "t1")
    counts: Counter[TagState] = Counter()
    tracemalloc.start()
    try:
        for d in compare_repo(pair, source_acr=Pager(source), source_instance="cri-s",
                              target_acr=Pager(target), target_instance="cri-t", tag_regex=ALL,
                              override=False, in_flight=lambda tag, d: None, source_limiter=QpsLimiter(0),
                              target_limiter=QpsLimiter(0)):
            counts[d.state] += 1
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert counts == {TagState.OK: 4500, TagState.DIGEST_DIFFERS: 500}
    assert peak < 160 * 1024, f"peak {peak / 1024:.0f} KiB"
    assert os.listdir(tmp_path) == []


class TestTallyOrder:
    def drifts(self) -> list[TagDrift]:
        return [TagDrift(f"v{i:03d}", TagState.MISSING if i % 2 else TagState.EXTRA) for i in range(60)]

    def test_examples_are_the_first_by_name_whatever_the_order(self):
        tallies = []
        for seed in range(4):
            ds = self.drifts()
            random.Random(seed).shuffle(ds)
            tally = Tally(keep=5)
            for d in ds:
                tally.add(d)
            tallies.append(tally)
        first = tallies[0]
        assert [d.tag for d in first.examples["MISSING"]] == ["v001", "v003", "v005", "v007", "v009"]
        assert [d.tag for d in first.examples["EXTRA"]] == ["v000", "v002", "v004", "v006", "v008"]
        assert all(t.examples == first.examples and t.counts == first.counts for t in tallies)

    def test_keep_zero_keeps_nothing(self):
        tally = Tally(keep=0)
        for d in self.drifts():
            tally.add(d)
        assert tally.examples["MISSING"] == [] and tally.counts["MISSING"] == 30


def test_a_run_reports_the_same_with_and_without_the_spill(cloud_factory, tmp_path, monkeypatch):
    """A repository of 250 tags per side (three ListRepoTag pages) through the real SDK clients: the
    spilled run and an all-in-memory run give the same rows and findings, and no spill is left behind."""
    doc = scenario()
    by_id = {i["id"]: i for i in doc["instances"]}

    def repo_of(instance: str) -> dict:
        ns = next(n for n in by_id[instance]["namespaces"] if n["name"] == "team-a")
        return next(r for r in ns["repos"] if r["name"] == "web")

    source_tags, target_tags = repo_of("cri-demosource01")["tags"], repo_of("cri-demotarget01")["tags"]
    for i in range(250):
        source_tags.append({"tag": f"v2.{i}" if i % 11 else f"nightly-{i}", "digest": digest(i)})
        if i % 13:
            target_tags.append({"tag": f"v2.{i}" if i % 11 else f"nightly-{i}",
                                "digest": digest(i if i % 17 else i + 5000)})
    target_tags += [{"tag": f"v9.{i}", "digest": digest(i)} for i in range(30)]
    cloud = cloud_factory(doc)

    sides: list[TargetSide] = []

    class Watched(TargetSide):
        def __init__(self, **kw):
            super().__init__(**kw)
            self.spilled_to: tuple[str, int] | None = None
            sides.append(self)

        def _spill(self, total):
            out = super()._spill(total)
            self.spilled_to = (self.directory, self.buckets)
            return out

    class InMemory(TargetSide):
        """The comparison as it was: every target tag in one index, however many pages."""

        def add_page(self, tags, total=-1):
            for t in tags:
                self._index.add(t.tag, t.digest)

    monkeypatch.setattr(drift, "TargetSide", Watched)
    spilled, _ = entry.check(make_app(cloud, tmp_path, config_doc(tmp_path / "a.db"), examples_per_repo=4),
                             Options())
    spills = [s.spilled_to for s in sides if s.spilled_to]
    assert [n for _, n in spills] == [3]                                # team-a/web only: ceil(261/100)
    assert not any(os.path.exists(path) for path, _ in spills)
    monkeypatch.setattr(drift, "TargetSide", InMemory)
    memory, _ = entry.check(make_app(cloud, tmp_path, config_doc(tmp_path / "b.db"), examples_per_repo=4),
                            Options())
    assert spilled.rows == memory.rows
    assert spilled.findings == memory.findings
    web = next(r for r in spilled.rows if r.path == "team-a/web").cells["beijing"]
    kept = [i for i in range(250) if i % 11]                            # nightly-* are out of the filter
    assert (web.missing, web.differs, web.extra) == (1 + sum(1 for i in kept if i % 13 == 0),
                                                     sum(1 for i in kept if i % 13 and i % 17 == 0), 30)
    missing = next(f for f in spilled.findings if f.code == "TAG_MISSING" and f.repo == "team-a/web")
    assert len(missing.evidence) == 4 and [e.detail.split(",")[0] for e in missing.evidence] == sorted(
        e.detail.split(",")[0] for e in missing.evidence)

"""drift: pure classification, the target index, pacing and the paged comparison (fake pagers)."""

from __future__ import annotations

import re
import threading

import pytest

from acrsync.config import Target
from acrsync.drift import (
    Limiters,
    QpsLimiter,
    RepoPair,
    SourceTag,
    TagDrift,
    TagState,
    TargetIndex,
    classify,
    classify_page,
    compare_repo,
    extras,
    pair_for,
    target_repos,
)
from acrsync.model import RepoInfo, TagInfo

ALL = re.compile(".*")


def src(tag: str, digest: str = "aa", size: int = 10, pushed: int = 5) -> SourceTag:
    return SourceTag(tag, digest, size, pushed)


def none(tag: str, digest: str) -> None:
    return None


class TestClassify:
    def test_ok_when_same_digest_even_with_prefix(self):
        d = classify(src("v1", "ab"), "sha256:ab", override=False, in_flight=None)
        assert d.state is TagState.OK and d.target_digest == "ab"

    def test_missing(self):
        d = classify(src("v1"), None, override=False, in_flight=None)
        assert d == TagDrift("v1", TagState.MISSING, src("v1"), None)

    @pytest.mark.parametrize("override", [False, True])
    def test_digest_differs_carries_override(self, override):
        d = classify(src("v1", "aa"), "bb", override=override, in_flight=None)
        assert d.state is TagState.DIGEST_DIFFERS and d.overwrites is override and d.target_digest == "bb"

    def test_in_flight_wins_over_missing_and_differs_not_over_ok(self):
        assert classify(src("v1"), None, override=False, in_flight="PENDING t-1").state is TagState.IN_FLIGHT
        assert classify(src("v1", "aa"), "bb", override=False, in_flight="QUEUED").state is TagState.IN_FLIGHT
        assert classify(src("v1", "aa"), "aa", override=False, in_flight="QUEUED").state is TagState.OK

    def test_source_tag_carries_size_and_push_time(self):
        s = SourceTag.of(TagInfo(tag="v1", digest="sha256:cc", size=1234, updated_ms=99))
        assert (s.digest, s.size, s.pushed_ms) == ("cc", 1234, 99)


class TestPage:
    def test_filter_takes_every_source_tag_out_of_the_index(self):
        index = TargetIndex()
        for tag, digest in [("v1", "aa"), ("latest", "aa"), ("only-target", "dd")]:
            index.add(tag, digest)
        page = [TagInfo(tag="v1", digest="aa"), TagInfo(tag="latest", digest="aa"),
                TagInfo(tag="v2", digest="ee")]
        out = classify_page(page, index, tag_regex=re.compile(r"v.*"), override=False, in_flight=none)
        assert [(d.tag, d.state) for d in out] == [("v1", TagState.OK), ("v2", TagState.MISSING)]
        # 'latest' is out of the filter but exists on the source: not an EXTRA
        assert [(d.tag, d.state, d.target_digest) for d in extras(index)] == [
            ("only-target", TagState.EXTRA, "dd")]

    def test_in_flight_asked_only_when_not_ok(self):
        asked = []

        def fl(tag, digest):
            asked.append((tag, digest))
            return "QUEUED"

        index = TargetIndex()
        index.add("v1", "aa")
        out = classify_page([TagInfo(tag="v1", digest="aa"), TagInfo(tag="v2", digest="sha256:bb")], index,
                            tag_regex=ALL, override=False, in_flight=fl)
        assert asked == [("v2", "bb")]
        assert [d.state for d in out] == [TagState.OK, TagState.IN_FLIGHT]


class TestLimiter:
    def test_spaces_calls(self):
        t = [0.0]
        slept = []

        def sleep(s):
            slept.append(s)
            t[0] += s

        lim = QpsLimiter(10, now=lambda: t[0], sleep=sleep)
        waits = [lim.acquire() for _ in range(5)]
        assert waits == pytest.approx([0, 0.1, 0.1, 0.1, 0.1])
        assert t[0] == pytest.approx(0.4) and lim.acquired == 5

    def test_threads_share_slots(self):
        t = [0.0]
        lock = threading.Lock()
        lim = QpsLimiter(4, now=lambda: 0.0, sleep=lambda s: None)
        waits = []

        def work():
            w = lim.acquire()
            with lock:
                waits.append(w)

        threads = [threading.Thread(target=work) for _ in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert sorted(waits) == pytest.approx([i * 0.25 for i in range(8)])
        assert t == [0.0]

    def test_unlimited(self):
        lim = QpsLimiter(0, sleep=lambda s: pytest.fail("must not sleep"))
        assert lim.acquire() == 0.0 and lim.acquired == 1

    def test_per_account(self):
        lims = Limiters(5)
        assert lims.for_account("1") is lims.for_account("1")
        assert lims.for_account("1") is not lims.for_account("2")


class FakeAcr:
    """Pages of 100 in a fixed order, with TotalCount as a string like ACR; records the calls."""

    def __init__(self, repos: dict[str, list[TagInfo]], repo_infos: list[RepoInfo] = ()):
        self.repos = repos
        self.repo_infos = list(repo_infos)
        self.calls: list[tuple] = []

    def list_repo_tag_page(self, instance_id, repo_id, page_no, *, page_size=100):
        self.calls.append(("ListRepoTag", instance_id, repo_id, page_no))
        tags = self.repos[repo_id]
        return tags[(page_no - 1) * page_size: page_no * page_size], len(tags)

    def list_repository_page(self, instance_id, page_no, *, namespace=None, page_size=100):
        self.calls.append(("ListRepository", instance_id, namespace, page_no))
        repos = [r for r in self.repo_infos if namespace is None or r.namespace == namespace]
        return repos[(page_no - 1) * page_size: page_no * page_size], len(repos)


def tags(prefix: str, n: int, digest: str = "d") -> list[TagInfo]:
    return [TagInfo(tag=f"{prefix}{i}", digest=f"{digest}{i}", size=i, updated_ms=i) for i in range(n)]


def target(**kw) -> Target:
    base = dict(name="b", account_id="2", region="cn-beijing", instance_id="cri-t")
    base.update(kw)
    return Target(**base)


class TestCompareRepo:
    def run(self, source_tags, target_tags, *, target_repo_id="t1", regex=ALL, override=False,
            in_flight=none):
        s = FakeAcr({"s1": source_tags})
        t = FakeAcr({"t1": target_tags})
        repo = RepoInfo(instance_id="cri-s", repo_id="s1", namespace="ns", name="app")
        pair = RepoPair(repo, "ns", "app", target_repo_id)
        out = list(compare_repo(pair, source_acr=s, source_instance="cri-s", target_acr=t,
                                target_instance="cri-t",
                                tag_regex=regex, override=override, in_flight=in_flight,
                                source_limiter=QpsLimiter(0), target_limiter=QpsLimiter(0)))
        return out, s.calls, t.calls

    def test_page_floor_and_all_states(self):
        source = tags("v", 250)
        target_side = tags("v", 200)                      # v0..v199 same digests
        target_side[5] = TagInfo(tag="v5", digest="other")  # differs
        target_side.append(TagInfo(tag="extra1", digest="x"))
        out, s_calls, t_calls = self.run(source, target_side,
                                         in_flight=lambda tag, d: "QUEUED" if tag == "v249" else None)
        assert len(s_calls) == 3 and len(t_calls) == 3        # ceil(250/100), ceil(201/100)
        states = {d.tag: d.state for d in out}
        assert states["v0"] is TagState.OK and states["v5"] is TagState.DIGEST_DIFFERS
        assert states["v200"] is TagState.MISSING and states["v249"] is TagState.IN_FLIGHT
        assert states["extra1"] is TagState.EXTRA
        assert sum(1 for d in out if d.state is TagState.MISSING) == 49

    def test_no_target_repo_no_target_calls(self):
        out, s_calls, t_calls = self.run(tags("v", 3), [], target_repo_id=None)
        assert t_calls == [] and len(s_calls) == 1
        assert {d.state for d in out} == {TagState.MISSING}

    def test_empty_source_is_one_call(self):
        out, s_calls, t_calls = self.run([], [])
        assert out == [] and len(s_calls) == 1 and len(t_calls) == 1

    def test_streams_one_source_page_at_a_time(self):
        s = FakeAcr({"s1": tags("v", 300)})
        t = FakeAcr({"t1": []})
        pair = RepoPair(RepoInfo(instance_id="cri-s", repo_id="s1", namespace="ns", name="app"),
                        "ns", "app", "t1")
        it = compare_repo(pair, source_acr=s, source_instance="cri-s", target_acr=t, target_instance="cri-t",
                          tag_regex=ALL, override=False, in_flight=none, source_limiter=QpsLimiter(0),
                          target_limiter=QpsLimiter(0))
        first = next(it)
        assert first.tag == "v0" and len(s.calls) == 1      # the second source page is not read yet

    def test_cloud_error_propagates(self):
        class Broken(FakeAcr):
            def list_repo_tag_page(self, *a, **k):
                raise RuntimeError("denied")

        pair = RepoPair(RepoInfo(instance_id="cri-s", repo_id="s1", namespace="ns", name="app"),
                        "ns", "app", "t1")
        with pytest.raises(RuntimeError):
            list(compare_repo(pair, source_acr=FakeAcr({"s1": []}), source_instance="s",
                              target_acr=Broken({}),
                              target_instance="t", tag_regex=ALL, override=False, in_flight=none,
                              source_limiter=QpsLimiter(0), target_limiter=QpsLimiter(0)))


def test_pair_for_uses_target_namespace():
    repo = RepoInfo(instance_id="cri-s", repo_id="s1", namespace="team-a", name="web")
    assert pair_for(repo, target(), {"team-a/web": "r9"}).target_repo_id == "r9"
    p = pair_for(repo, target(target_namespace="mirror"), {"team-a/web": "r9"})
    assert (p.target_path, p.target_repo_id) == ("mirror/web", None)


def test_target_repos_pages():
    infos = [RepoInfo(instance_id="cri-t", repo_id=f"r{i}", namespace="ns", name=f"n{i}") for i in range(150)]
    acr = FakeAcr({}, infos)
    lim = QpsLimiter(0)
    found = target_repos(acr, "cri-t", lim)
    assert len(found) == 150 and found["ns/n7"] == "r7"
    assert len(acr.calls) == 2 and lim.acquired == 2


class TestTargetIndex:
    def test_many_tags_grow_the_table_and_each_is_taken_once(self):
        index = TargetIndex()
        digests = {f"v{i}": f"{i:064x}" for i in range(5000)}
        for tag, digest in digests.items():
            index.add(tag, "sha256:" + digest)
        assert len(index) == 5000
        assert all(index.take(tag) == digest for tag, digest in list(digests.items())[::2])
        assert index.take("v0") is None and index.take("nope") is None
        left = index.remaining()
        assert len(left) == 2500 == len(index) and left[0] == ("v1", f"{1:064x}")

    def test_re_adding_a_tag_keeps_the_last_digest_and_odd_digests_survive(self):
        index = TargetIndex()
        index.add("v1", "a" * 64)
        index.add("v1", "short")
        index.add("ünïcode", "b" * 64)
        assert len(index) == 2
        assert index.take("v1") == "short"
        assert index.remaining() == [("ünïcode", "b" * 64)]

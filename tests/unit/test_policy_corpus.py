"""Every document in tests/data/policies/ evaluated by acrsync.policy against its recorded expectation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from acrsync import policy as P

CORPUS = Path(__file__).resolve().parents[1] / "data" / "policies"
CASES = sorted(CORPUS.glob("*.yaml"))
# The corpus's made-up target (see tests/data/policies/README.md).
TARGET = P.target_resources("cn-beijing", "1510000000000002", "cri-target0001")


def _text(document) -> str:
    return document if isinstance(document, str) else json.dumps(document)


def test_corpus_is_large_enough():
    assert len(CASES) >= 30


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_corpus_case(path: Path):
    case = yaml.safe_load(path.read_text(encoding="utf-8"))
    kind = case["kind"]
    if kind == "role_names":
        assert P.near_miss_role_names(case["names"]) == case["expect"]["near_miss"]
        return
    expect = case.get("expect", {})
    if expect.get("error"):
        assert expect["error"] == "POLICY_MALFORMED"
        with pytest.raises(P.PolicyError) as e:
            if kind == "trust":
                P.evaluate_trust(_text(case["document"]), case["source_account"], case["target_account"])
            else:
                P.parse_policy(_text(case["document"]), path.stem)
        assert expect["message_contains"] in str(e.value)
        return
    if kind == "trust":
        v = P.evaluate_trust(_text(case["document"]), case["source_account"], case["target_account"])
        assert v.decision == expect["decision"]
        assert v.principal == f"{case['source_account']}@cr.aliyuncs.com"
        assert [w.principal for w in v.warnings] == expect["warnings"]
        if "statements" in expect:
            assert [e.statement for e in v.evidence] == expect["statements"]
        assert len(v.conditions) == expect.get("conditions", 0)
        return
    assert kind == "policy"
    pol = P.parse_policy(_text(case["document"]), path.stem)
    assert case["checks"], "a policy case needs at least one check"
    for check in case["checks"]:
        want = check["expect"]
        if check.get("target"):
            v = P.evaluate_any([pol], check["action"], TARGET)
        else:
            v = P.evaluate([pol], check["action"], check["resource"])
        where = f"{check['action']} -> {v.decision} ({v.resource})"
        assert v.decision == want["decision"], where
        if "resource" in want:
            assert v.resource == want["resource"], where
        if "statements" in want:
            assert [e.statement for e in v.evidence] == want["statements"], where
            assert all(e.policy == path.stem for e in v.evidence)
        assert len(v.conditions) == want.get("conditions", 0), where

"""Pure parts of a run: repository-level scope, report ids, timer options, cell labels, verdicts, Markdown."""

from __future__ import annotations

import re

from acrsync.compliance import render
from acrsync.compliance.entry import options_from
from acrsync.compliance.findings import finding
from acrsync.compliance.report import Cell, Mode, verdict_of
from acrsync.compliance.run import repo_scope, report_id
from acrsync.config import Target
from acrsync.events import TimerTick
from tests.compliance.factory import XSS, report
from tests.compliance.test_pipeline_notify import CFG


def target(**kw) -> Target:
    return Target(**{"name": "b", "account_id": "2", "region": "cn-beijing", "instance_id": "cri-t", **kw})


def test_repo_scope_order_and_reasons():
    assert repo_scope(target(), "ns", "app") == (None, "")
    assert repo_scope(target(enabled=False), "ns", "app")[0] is Mode.DISABLED
    assert repo_scope(target(exclude=["ns/tmp-*"]), "ns", "tmp-1") == (Mode.EXCLUDED, "ns/tmp-*")
    assert repo_scope(target(namespaces=["team-*"], exclude=["ns/a"]), "ns", "a")[0] is Mode.EXCLUDED
    assert repo_scope(target(namespaces=["team-*"]), "ns", "a")[0] is Mode.OUT_OF_SCOPE
    assert repo_scope(target(repositories=["ns/b*"]), "ns", "a")[0] is Mode.OUT_OF_SCOPE
    assert repo_scope(target(repositories=["ns/b*"]), "ns", "bb") == (None, "")


def test_report_ids_sort_by_time():
    assert report_id(1795824000.5) == "20261128T000000.500Z"
    assert report_id(1795824000.5) < report_id(1795824001.0) < report_id(1795910400.0)


def test_timer_options():
    tick = TimerTick(trigger_name="hourly", payload={"mode": "compliance", "targets": ["b"],
                                                     "remediate": True})
    opts = options_from(tick, CFG)
    assert (opts.targets, opts.remediate, opts.trigger) == (["b"], True, "timer")
    plain = options_from(TimerTick(trigger_name="hourly", payload=""), CFG)
    assert (plain.targets, plain.remediate) == (None, CFG.compliance.remediate)
    assert options_from(None, CFG).trigger == "invoke"


def test_cell_labels_and_colours():
    assert Cell(mode=Mode.RULE, rule_id="crsr-1", ok=3).label == "rule crsr-1"
    assert Cell(mode=Mode.ACRSYNC, missing=2, differs=1).label == "acrsync · missing 2 · drift 1"
    assert Cell(mode=Mode.EXCLUDED, reason="ns/tmp-*").label == "excluded ns/tmp-*"
    assert Cell(mode=Mode.ACRSYNC, missing=1).css == "bad"
    assert Cell(mode=Mode.ACRSYNC, in_flight=1).css == "busy"
    assert Cell(mode=Mode.OUT_OF_SCOPE).css == "none" and Cell(mode=Mode.OUT_OF_SCOPE).healthy
    assert not Cell(mode=Mode.NOT_CHECKED).healthy


def test_verdict_counts_errors_only():
    assert verdict_of([finding("IN_FLIGHT", "b", "x"), finding("REMEDIATION_LIMIT", "*", "y")]) == "compliant"
    assert verdict_of([finding("TAG_MISSING", "b", "x")]) == "findings"


def test_markdown_escapes_and_lists_problem_rows_only():
    md = render.as_markdown(report(100, evil=True))
    outside_code = re.sub(r"`[^`]*`", "", md)          # a code span shows its text literally
    assert XSS not in outside_code and "&lt;script&gt;" in md and f"`{XSS}`" in md
    assert "| team-3/repo-0007 |" in md and "repo-0000" not in md.split("## Findings")[0]


def test_an_unproven_grant_keeps_the_run_from_compliant():
    from acrsync.compliance.findings import Finding

    unproven = Finding(code="CONDITION_UNKNOWN", severity="warning", target="b", message="holds only if ...")
    advisory = Finding(code="TRUST_TOO_WIDE", severity="warning", target="b", message="wider than needed")
    assert unproven.blocks and not advisory.blocks
    assert verdict_of([unproven]) == "findings" and verdict_of([advisory]) == "compliant"

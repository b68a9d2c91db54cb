"""Reports in the ledger (SQLite and Tablestore): stored, listed newest first, read back whole; trimmed to fit
Tablestore's column size when the evidence is too large."""

from __future__ import annotations

from acrsync import codec
from acrsync.compliance import report as reports
from acrsync.compliance.findings import finding
from acrsync.grants.findings import Evidence
from tests.compliance.factory import report


def test_round_trip_at_2000_repositories(ledger):
    big = report(2000, namespaces=80)
    reports.store(ledger, big)
    later = big.model_copy(update={"id": "20261128T010000.000Z", "finished_at": big.finished_at + 3600})
    reports.store(ledger, later)
    assert reports.load(ledger, "latest").id == later.id
    back = reports.load(ledger, big.id)
    assert back == big and len(back.rows) == 2000
    listed = ledger.list_reports(reports.KIND)
    assert [r.id for r in listed] == [later.id, big.id]
    assert listed[0].summary["verdict"] == "findings"
    assert listed[0].summary["counts"]["beijing"]["TAG_MISSING"] == 120
    assert reports.load(ledger, "nope") is None


def test_too_large_evidence_is_trimmed_and_said(ledger):
    r = report(10)
    noisy = [finding("TAG_MISSING", "beijing", f"many in {i}", repo=f"ns/r{i}", count=500,
                     evidence=[Evidence(source="ListRepoTag", detail="x" * 300) for _ in range(500)])
             for i in range(12)]
    r = r.model_copy(update={"findings": r.findings + noisy})
    reports.store(ledger, r)
    back = reports.load(ledger, r.id)
    assert back.truncated and all(len(f.evidence) <= 3 for f in back.findings)
    assert [f.count for f in back.findings if f.message.startswith("many")] == [500] * 12


def test_a_huge_matrix_keeps_its_problem_rows():
    huge = report(30000, namespaces=300)
    stored = reports.to_stored(huge)
    back = reports.ComplianceReport.model_validate(stored.body)
    assert back.truncated and len(codec.dumps(stored)) < reports.MAX_STORED_BYTES + 10_000
    assert len(back.rows) == len([r for r in huge.rows if not r.healthy]) == 1200
    assert back.findings == huge.findings and stored.summary == huge.summary()

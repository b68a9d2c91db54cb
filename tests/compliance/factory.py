"""Synthetic compliance reports for rendering tests (no I/O): any number of repositories and targets."""

from __future__ import annotations

from acrsync.compliance.findings import finding
from acrsync.compliance.report import Cell, ComplianceReport, Mode, RepoRow, Scope, TargetResult, finalize
from acrsync.grants.findings import Evidence, Fix

XSS = '<script>alert("x")</script>'


def report(repos: int = 12, *, namespaces: int = 4, evil: bool = False,
           tag_filter: str = "v.*") -> ComplianceReport:
    targets = [TargetResult(name="beijing", account_id="2222222222222222", region="cn-beijing",
                            instance_id="cri-demotarget01", tag_filter=tag_filter),
               TargetResult(name="shanghai", account_id="3333333333333333", region="cn-shanghai",
                            instance_id="cri-demodrsite01")]
    rows, findings = [], []
    for i in range(repos):
        ns = f"team-{i % namespaces}"
        cells = {"beijing": Cell(mode=Mode.ACRSYNC, ok=30), "shanghai": Cell(mode=Mode.RULE,
                                                                             rule_id="crsr-1", ok=30)}
        if i % 50 == 7:
            cells["beijing"] = Cell(mode=Mode.ACRSYNC, ok=27, missing=3)
            findings.append(finding("TAG_MISSING", "beijing", f"3 tag(s) of {ns}/repo-{i:04d} are missing",
                                    repo=f"{ns}/repo-{i:04d}", count=3,
                                    evidence=[Evidence(source="ListRepoTag",
                                                       detail=f"v1.{i} source sha256:abc")],
                                    fix=Fix(summary="acrsync check --remediate",
                                            commands=["acrsync check --remediate"])))
        if i % 50 == 8:
            cells["shanghai"] = Cell(mode=Mode.RULE, rule_id="crsr-1", ok=29, differs=1)
        if i % 50 == 9:
            cells["shanghai"] = Cell(mode=Mode.EXCLUDED, reason=f"{ns}/tmp-*")
        rows.append(RepoRow(namespace=ns, repo=f"repo-{i:04d}", tags=30, cells=cells))
    if evil:
        findings.append(finding("TARGET_UNREADABLE", "beijing", f"reply said {XSS}",
                                evidence=[Evidence(source=XSS, detail=f"{XSS} & <b>bold</b>")],
                                fix=Fix(summary=XSS, commands=[XSS])))
        rows.append(RepoRow(namespace=XSS, repo=XSS, tags=1,
                            cells={"beijing": Cell(mode=Mode.UNREADABLE, reason=XSS)}))
    scope = Scope(source_instance="cri-demosource01", source_region="cn-hangzhou",
                  targets=["beijing", "shanghai"],
                  repos_total=len(rows), repos_checked=len(rows), pipeline="checked")
    return finalize(ComplianceReport(id="20261128T000000.000Z", started_at=1795824000.0,
                                     finished_at=1795824060.0,
                                     verdict="compliant", complete=True, scope=scope, targets=targets,
                                     rows=rows,
                                     findings=findings, calls={"cr:ListRepoTag": 2 * repos}))

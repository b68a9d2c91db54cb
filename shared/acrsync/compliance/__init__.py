"""Scheduled compliance: does every target hold every in-scope image, why not, and (opt-in) heal it.

API::

    run(Deps, Options) -> ComplianceReport                 one run (acrsync.compliance.run)
    entry.check(app, Options, budget=None) -> (report, notified)   run + store + notify (CLI, function)
    entry.handle(app, event, budget) -> dict               the FC handler's work (decides by event shape)
    report.load(ledger, "latest" | id) / report.store(ledger, report)
    render.as_text / as_json / as_markdown / as_html(report)
"""

from acrsync.compliance.findings import CODES, Finding, finding
from acrsync.compliance.report import ComplianceReport
from acrsync.compliance.run import Deps, Options, run

__all__ = ["CODES", "ComplianceReport", "Deps", "Finding", "Options", "finding", "run"]

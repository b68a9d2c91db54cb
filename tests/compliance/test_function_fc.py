"""The compliance function in localcloud's FC runtime: functions/compliance/index.py run in a subprocess with
the function role's STS keys, invoked through the FC 3.0 API (InvokeFunction), as its timer would."""

from __future__ import annotations

import json

from acrsync.cloud.clients import Timeouts
from acrsync.compliance import report as reports
from acrsync.config import parse_config
from acrsync.ledger.factory import open_ledger
from tests.compliance.helpers import ROOT, SOURCE_REGION, config_doc, scenario, session


def test_timer_invocation_in_fc_checks_the_pipeline_and_stores_the_report(cloud_factory, tmp_path):
    cfg_path = tmp_path / "acrsync.yaml"
    doc = config_doc(tmp_path / "ledger.db")
    cfg_path.write_text(json.dumps(doc))
    world = scenario(functions=True)
    for fn in world["functions"]:
        fn["environment"] = {"ACRSYNC_CONFIG": str(cfg_path)}
    cloud = cloud_factory(world)
    fc = session(cloud, timeouts=Timeouts(read=300.0)).fc(SOURCE_REGION)    # the checker user may invoke it
    reply = json.loads(fc.invoke_function("acrsync-compliance",
                                          (ROOT / "events" / "timer_compliance.json").read_bytes()))
    assert reply["verdict"] == "findings" and reply["complete"] is True and reply["rejected"] == 0
    ledger = open_ledger(parse_config(doc).ledger)
    stored = reports.load(ledger, reply["report_id"])
    assert stored.scope.trigger == "timer" and stored.scope.pipeline == "checked"
    assert not [f for f in stored.findings if f.code.startswith("PIPELINE")]
    missing = {f.repo for f in stored.findings if f.code == "TAG_MISSING"}
    assert missing == {"team-a/web", "team-b/batch"}        # team-b/batch:v3 predates team-b's rule
    assert stored.calls.get("cr:ListRepoTag", 0) >= 1 and stored.calls.get("fc:ListTriggers") == 3

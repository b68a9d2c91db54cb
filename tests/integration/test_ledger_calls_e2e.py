"""A function instance on a Tablestore ledger: its ledger calls go through the same session as its ACR
calls, so they are counted in ``session.calls`` exactly as localcloud (the judge) counts them."""

from __future__ import annotations

from acrsync.ledger.tablestore import TablestoreLedger
from tests.integration.e2e import config_doc, fc_context, make_app, push_event, tasks_for


def test_push_on_a_tablestore_ledger_counts_every_call_in_the_session(cloud, tmp_path):
    doc = config_doc(tmp_path / "unused.db")
    # the configured endpoint is the production form; ACRSYNC_ENDPOINT sends the client to localcloud
    # the demo world's instance and table prefix, which the demo principals' ots: policies name
    doc["ledger"] = {"backend": "tablestore", "instance": "acrsyncdemo", "table_prefix": "acrsynce2e",
                     "endpoint": "https://acrsyncdemo.cn-hangzhou.ots.aliyuncs.com"}
    app = make_app(cloud, tmp_path / "unused.db", config=doc)
    assert isinstance(app.ledger, TablestoreLedger) and app.ledger.endpoint == cloud.url
    app.ledger.init()
    event = push_event(cloud, "team-a", "web", "v1.2.0")
    app.session.calls.clear()
    cloud.reset_stats()

    summary = app.handle_on_push(event, fc_context())

    assert summary["targets"]["beijing"]["created"] == 1
    (task,) = tasks_for(cloud, "web", "v1.2.0")
    (rec,) = app.ledger.records_for("cri-demosource01", "team-a", "web", "v1.2.0")
    assert rec.task_id == task.task_id
    ours = {k.removeprefix("ots:"): v for k, v in app.session.calls.items() if k.startswith("ots:")}
    judge = {k: v for k, v in cloud.stats().items() if k in ours or k.endswith("Row") or k == "GetRange"}
    assert ours and ours == judge
    assert ours.get("PutRow", 0) + ours.get("BatchWriteRow", 0) >= 1     # the exactly-once gate
    assert app.session.calls["cr:CreateRepoSyncTask"] == 1

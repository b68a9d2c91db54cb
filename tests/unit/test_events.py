"""acrsync.events: every sample event, each accepted key variant, webhook authentication, rejections."""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import logging
from datetime import datetime, timezone
from pathlib import Path

import pytest

from acrsync import codec
from acrsync.events import (
    PushCompleted,
    Rejected,
    SyncCompleted,
    TimerTick,
    detect_and_parse,
    http_response,
    parse,
)
from acrsync.jsonlog import JsonFormatter

EVENTS = Path(__file__).resolve().parents[2] / "events"
TOKEN = "demo-webhook-token-not-secret"     # made-up demo token, the one in events/webhook_http.json
SOURCE = "cri-demosource01"                 # made-up demo instance


def load(name: str):
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def run(event, token: str | None = TOKEN, source: str | None = SOURCE):
    return detect_and_parse(event, webhook_token=token, source_instance_id=source)


def one(event, **kw):
    [item] = run(event, **kw)
    return item


# ---- the samples ---------------------------------------------------------------------------------

def test_every_sample_is_documented_and_parses():
    readme = (EVENTS / "README.md").read_text(encoding="utf-8")
    samples = sorted(EVENTS.glob("*.json"))
    assert len(samples) >= 8
    for path in samples:
        assert f"`{path.name}`" in readme, f"{path.name} has no line in events/README.md"
        items = run(path.read_bytes())
        assert items, path.name
        assert all(isinstance(i, (PushCompleted, SyncCompleted, TimerTick, Rejected)) for i in items)


def test_push_cloudevent_pascal_case():
    ev = one((EVENTS / "push_cloudevent.json").read_bytes())
    assert isinstance(ev, PushCompleted)
    assert (ev.event_id, ev.instance_id, ev.namespace, ev.repo, ev.tag) == (
        "demo-push-0001-7c35-447a-bd93-fab000000001", "cri-demosource01", "team-a", "api", "v1.2.3")
    assert ev.account_id == "1111111111111111" and ev.region == "cn-hangzhou"
    assert ev.repo_id == "crr-demoapi0001" and ev.instance_name == "demo-source"
    assert ev.digest == "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    assert ev.digest_hex == "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    assert ev.via == "eventbridge" and ev.repo_path == "team-a/api"
    assert ev.time == datetime(2024, 5, 20, 2, 15, 30, tzinfo=timezone.utc)
    assert ev.pushed_at_ms == 1716171330000
    assert ev.raw == load("push_cloudevent.json")


def test_push_cloudevent_camel_case_falls_back_to_the_envelope():
    ev = one((EVENTS / "push_cloudevent_camel.json").read_text())
    assert isinstance(ev, PushCompleted)
    assert (ev.instance_id, ev.namespace, ev.repo, ev.tag) == ("cri-demosource01", "team-a", "api", "v1.2.4")
    assert ev.region == "cn-hangzhou"                        # from aliyunregionid: data has no RegionId
    assert ev.repo_id is None
    assert ev.digest == ev.digest_hex == "6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b"
    assert ev.pushed_at_ms == 1716171360000


def test_batch_keeps_going_past_a_bad_entry():
    items = run((EVENTS / "push_batch.json").read_bytes())
    assert [type(i).__name__ for i in items] == ["PushCompleted", "Rejected", "PushCompleted"]
    bad = items[1]
    assert "no tag" in bad.reason and "Tag" in bad.reason
    assert bad.event_id == "demo-push-0004-7c35-447a-bd93-fab000000004"
    assert json.loads(bad.payload) == load("push_batch.json")[1]
    assert (items[0].tag, items[2].repo, items[2].tag) == ("v1.2.5", "web", "latest")


def test_rawdata_push_gets_a_stable_id_from_its_content():
    data = load("push_rawdata.json")
    ev = one(json.dumps(data))
    assert isinstance(ev, PushCompleted) and ev.via == "rawdata"
    assert (ev.instance_id, ev.namespace, ev.repo, ev.tag, ev.repo_id) == (
        "cri-demosource01", "team-a", "api", "v1.2.3", "crr-demoapi0001")
    assert ev.account_id is None and ev.pushed_at_ms is None
    reordered = dict(reversed(list(data.items())))
    assert one(json.dumps(reordered)).event_id == ev.event_id
    assert one(json.dumps({**data, "Tag": "v9"})).event_id != ev.event_id


def test_sync_completed():
    ev = one((EVENTS / "sync_completed.json").read_bytes())
    assert isinstance(ev, SyncCompleted)
    assert (ev.task_id, ev.batch_id, ev.status, ev.instance_id) == (
        "rst-demotask0001", "0b1c2d3e-demo-4f00-8000-000000000001", "SUCCESS", "cri-demosource01")
    assert ev.image_from.tag == "v1.2.3" and ev.image_from.namespace == "team-a"
    assert ev.image_to.instance_id == "cri-demotarget01" and ev.image_to.region == "cn-beijing"


@pytest.mark.parametrize("data,task,batch,status", [
    ({"syncTaskId": "rst-1", "taskStatus": "ERROR"}, "rst-1", None, "ERROR"),
    ({"TaskId": "rst-2", "Status": "SUCCESS", "SyncBatchTaskId": "b-2"}, "rst-2", "b-2", "SUCCESS"),
    ({"SyncBatchTaskId": "b-3"}, None, "b-3", None),
])
def test_sync_completed_key_variants(data, task, batch, status):
    event = {**load("sync_completed.json"), "data": data}
    ev = one(event)
    assert isinstance(ev, SyncCompleted)
    assert (ev.task_id, ev.batch_id, ev.status, ev.image_from) == (task, batch, status, None)


def test_sync_completed_as_rawdata():
    ev = one({"SyncTaskId": "rst-9", "TaskStatus": "SUCCESS", "InstanceId": "cri-demosource01"})
    assert isinstance(ev, SyncCompleted) and ev.task_id == "rst-9" and ev.event_id.startswith("raw-")


def test_timer_with_json_payload():
    ev = one((EVENTS / "timer_reconcile.json").read_bytes())
    assert isinstance(ev, TimerTick)
    assert ev.trigger_name == "every-10-min" and ev.trigger_time == "2024-05-20T02:30:00Z"
    assert ev.payload == {"mode": "reconcile"} and ev.mode == "reconcile"


@pytest.mark.parametrize("payload,expected", [
    ("awesome-fc", "awesome-fc"),
    ("[1, 2]", "[1, 2]"),                    # JSON but not an object: kept as text
    ("", ""),
    (None, ""),
    ({"mode": "compliance"}, {"mode": "compliance"}),
])
def test_timer_payload_forms(payload, expected):
    ev = one({"triggerTime": "2024-05-20T02:30:00Z", "triggerName": "t", "payload": payload})
    assert isinstance(ev, TimerTick) and ev.payload == expected
    assert ev.mode == (expected.get("mode") if isinstance(expected, dict) else None)


def test_malformed_sample_is_rejected_with_its_payload():
    text = (EVENTS / "malformed.json").read_text()
    bad = one(text)
    assert isinstance(bad, Rejected)
    assert "'data' is missing or not a JSON object" in bad.reason
    assert bad.payload == text and bad.source == "eventbridge" and bad.event_id == "demo-bad-0001"


# ---- key variants and envelope handling ----------------------------------------------------------

def _push(data: dict, **envelope) -> dict:
    base = {k: v for k, v in load("push_cloudevent.json").items() if k != "data"}
    return {**base, **envelope, "data": data}


@pytest.mark.parametrize("data,expected", [
    ({"InstanceId": "cri-a", "Namespace": "ns", "RepoName": "r", "Tag": "t"},
     ("cri-a", "ns", "r", "t", None)),
    ({"instanceId": "cri-a", "namespace": "ns", "repoName": "r", "tag": "t", "digest": "sha256:" + "ab" * 32},
     ("cri-a", "ns", "r", "t", "sha256:" + "ab" * 32)),
    ({"instance_id": "cri-a", "repo_namespace_name": "ns", "repo_name": "r", "tag": "t", "ImageDigest": "AB"
      * 32},
     ("cri-a", "ns", "r", "t", "AB" * 32)),
    ({"InstanceId": "cri-a", "RepoName": "ns/r", "Tag": "t"}, ("cri-a", "ns", "r", "t", None)),
    ({"InstanceId": "cri-a", "RepoNamespaceName": "ns", "RepoName": "ns/r", "Tag": "t"},
     ("cri-a", "ns", "r", "t", None)),
    ({"InstanceId": "cri-a", "RepoFullName": "ns/r", "Tag": "t"}, ("cri-a", "ns", "r", "t", None)),
    ({"InstanceId": "cri-a", "RepoNamespaceName": "ns", "RepoName": "r", "Tag": 7},
     ("cri-a", "ns", "r", "7", None)),
])
def test_push_data_key_variants(data, expected):
    ev = one(_push(data))
    assert isinstance(ev, PushCompleted), getattr(ev, "reason", "")
    assert (ev.instance_id, ev.namespace, ev.repo, ev.tag, ev.digest) == expected


def test_region_prefers_data_then_envelope():
    data = {"InstanceId": "cri-a", "RepoNamespaceName": "ns", "RepoName": "r", "Tag": "t"}
    assert one(_push({**data, "regionId": "cn-shanghai"})).region == "cn-shanghai"
    assert one(_push(data, aliyunregionid="cn-shenzhen")).region == "cn-shenzhen"
    no_region = {k: v for k, v in _push(data).items() if k != "aliyunregionid"}
    assert one(no_region).region is None


def test_data_as_json_text_or_base64_is_accepted():
    data = {"InstanceId": "cri-a", "RepoNamespaceName": "ns", "RepoName": "r", "Tag": "t"}
    as_text = one({**_push({}), "data": json.dumps(data)})
    as_b64 = {k: v for k, v in _push({}).items() if k != "data"}
    as_b64["data_base64"] = base64.b64encode(json.dumps(data).encode()).decode()
    assert isinstance(as_text, PushCompleted) and as_text.tag == "t"
    assert isinstance(one(as_b64), PushCompleted)


@pytest.mark.parametrize("data,needle", [
    ({"RepoNamespaceName": "ns", "RepoName": "r", "Tag": "t"}, "no instance id"),
    ({"InstanceId": "cri-a", "RepoName": "r", "Tag": "t"}, "no namespace"),
    ({"InstanceId": "cri-a", "RepoNamespaceName": "ns", "Tag": "t"}, "no repository name"),
    ({"InstanceId": "cri-a", "RepoNamespaceName": "ns", "RepoName": "r", "Tag": "  "}, "no tag"),
    ({"InstanceId": "cri-a", "RepoNamespaceName": "ns", "RepoName": "r", "Tag": "a b"}, "not a usable name"),
    ({"InstanceId": "cri-a", "RepoNamespaceName": "ns", "RepoName": "r", "Tag": "x" * 300},
     "not a usable name"),
    ({"InstanceId": "cri-a", "RepoNamespaceName": "ns", "RepoName": "r", "Tag": True}, "no tag"),
])
def test_incomplete_push_data_is_rejected_naming_the_missing_key(data, needle):
    bad = one(_push(data))
    assert isinstance(bad, Rejected) and needle in bad.reason
    assert bad.event_id == "demo-push-0001-7c35-447a-bd93-fab000000001"


@pytest.mark.parametrize("etype", ["cr:Artifact:BuildCompleted", "cr:Artifact:ScanCompleted",
                                   "cr:ActionTrail:ApiCall"])
def test_other_acr_types_are_rejected_with_the_filter_hint(etype):
    bad = one({**load("push_cloudevent.json"), "type": etype})
    assert isinstance(bad, Rejected)
    assert f"event type {etype!r} is not handled" in bad.reason
    assert "cr:Artifact:PushCompleted and cr:Artifact:SynchronizationCompleted" in bad.reason


def test_other_sources_are_rejected():
    bad = one({**load("push_cloudevent.json"), "source": "acs.oss", "type": "oss:ObjectCreated:PutObject"})
    assert isinstance(bad, Rejected) and "event source 'acs.oss'" in bad.reason


@pytest.mark.parametrize("time,expected_ms", [
    ("2024-05-20T02:15:30Z", 1716171330000),
    ("2024-05-20T10:15:30.250+08:00", 1716171330250),
    ("2024-05-20T10:15:30", None),                # no zone: not guessed
    ("yesterday", None),
])
def test_push_time_needs_a_zone(time, expected_ms):
    ev = one({**load("push_cloudevent.json"), "time": time})
    assert isinstance(ev, PushCompleted) and ev.pushed_at_ms == expected_ms


def test_cloudevent_without_id_gets_a_stable_one():
    event = {k: v for k, v in load("push_cloudevent.json").items() if k != "id"}
    a, b = one(event), one(json.dumps(event))
    assert a.event_id == b.event_id and a.event_id.startswith("ce-")


# ---- webhook over the FC HTTP trigger -------------------------------------------------------------

def webhook(**changes) -> dict:
    ev = load("webhook_http.json")
    for key, value in changes.items():
        if value is None:
            ev.pop(key, None)
        else:
            ev[key] = value
    return ev


def test_webhook_with_query_token():
    ev = one(webhook())
    assert isinstance(ev, PushCompleted) and ev.via == "webhook"
    assert (ev.instance_id, ev.namespace, ev.repo, ev.tag, ev.region) == (
        SOURCE, "team-a", "api", "v1.2.3", "cn-hangzhou")
    assert ev.digest_hex == "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
    # pushed_at has no zone: the time is when FC received the request (an upper bound of the push)
    assert ev.pushed_at_ms == 1716171331000 and ev.time.tzinfo is not None
    assert ev.raw == json.loads(load("webhook_http.json")["body"])
    assert TOKEN not in json.dumps(ev.raw)
    assert one(webhook()).event_id == ev.event_id              # a redelivery has the same id


def test_webhook_with_header_token_any_case():
    ev = webhook(queryParameters={}, headers={"X-Acrsync-Token": TOKEN})
    assert isinstance(one(ev), PushCompleted)


@pytest.mark.parametrize("changes,needle", [
    ({"queryParameters": {"token": "wrong"}}, "wrong token"),
    ({"queryParameters": {"token": TOKEN + "x"}}, "wrong token"),
    ({"queryParameters": {}}, "has no token"),
    ({"queryParameters": None, "headers": None}, "has no token"),
    ({"queryParameters": {"token": ["list"]}}, "has no token"),
])
def test_webhook_without_the_right_token_is_unauthenticated(changes, needle):
    bad = one(webhook(**changes))
    assert isinstance(bad, Rejected) and bad.unauthenticated and bad.http_status == 401
    assert bad.reason.startswith("unauthenticated webhook") and needle in bad.reason
    assert TOKEN not in bad.payload and TOKEN not in bad.reason


@pytest.mark.parametrize("token", [None, ""])
def test_webhook_refused_when_no_token_is_configured(token):
    bad = one(webhook(), token=token)
    assert isinstance(bad, Rejected) and bad.unauthenticated
    assert "no webhook token is configured" in bad.reason
    assert TOKEN not in bad.payload


def test_webhook_base64_body():
    raw = load("webhook_http.json")["body"]
    ev = one(webhook(body=base64.b64encode(raw.encode()).decode(), isBase64Encoded=True))
    assert isinstance(ev, PushCompleted) and ev.tag == "v1.2.3"


def test_webhook_body_already_an_object():
    ev = one(webhook(body=json.loads(load("webhook_http.json")["body"])))
    assert isinstance(ev, PushCompleted) and ev.repo == "api"


@pytest.mark.parametrize("changes,needle", [
    ({"body": "not json"}, "body is not JSON"),
    ({"body": "!!!", "isBase64Encoded": True}, "not base64"),
    ({"body": json.dumps({"push_data": {"tag": "v1"}})}, "no 'push_data' and 'repository'"),
    ({"body": json.dumps({"push_data": {"tag": "v1"}, "repository": {"namespace": "team-a"}})},
     "repository.name"),
    ({"body": json.dumps({"push_data": {}, "repository": {"repo_full_name": "team-a/api"}})},
     "push_data.tag"),
])
def test_malformed_webhook_bodies(changes, needle):
    bad = one(webhook(**changes))
    assert isinstance(bad, Rejected) and not bad.unauthenticated and bad.http_status == 400
    assert bad.reason.startswith("malformed webhook") and needle in bad.reason


def test_webhook_repo_full_name_is_enough():
    body = {"push_data": {"tag": "v2"}, "repository": {"repo_full_name": "team-b/web"}}
    ev = one(webhook(body=json.dumps(body)))
    assert isinstance(ev, PushCompleted) and (ev.namespace, ev.repo, ev.digest) == ("team-b", "web", None)


def test_webhook_get_is_refused():
    ev = webhook()
    ev["requestContext"]["http"]["method"] = "GET"
    bad = one(ev)
    assert isinstance(bad, Rejected) and "method GET" in bad.reason


def test_webhook_needs_the_configured_source_instance():
    bad = one(webhook(), source=None)
    assert isinstance(bad, Rejected) and "source.instance_id" in bad.reason


def test_bare_webhook_payload_cannot_be_authenticated():
    bad = one(load("webhook_http.json")["body"])
    assert isinstance(bad, Rejected) and bad.unauthenticated and bad.source == "webhook"


def test_http_response_shape():
    resp = http_response(202, {"accepted": 1, "event_id": "e"})
    assert resp == {"statusCode": 202, "headers": {"Content-Type": "application/json"},
                    "isBase64Encoded": False, "body": '{"accepted": 1, "event_id": "e"}'}


# ---- input forms and rejection of garbage ---------------------------------------------------------

def test_bytes_str_and_dict_give_the_same_result():
    raw = (EVENTS / "push_cloudevent.json").read_bytes()
    assert run(raw) == run(raw.decode()) == run(json.loads(raw)) == run(bytearray(raw))


def test_non_utf8_bytes_are_kept_as_base64():
    blob = b"\xff\xfe\x00garbage"
    bad = one(blob)
    assert isinstance(bad, Rejected) and "not UTF-8" in bad.reason
    assert base64.b64decode(bad.payload) == blob


@pytest.mark.parametrize("event,needle", [
    ("{not json", "not JSON"),
    ("", "the event is empty"),
    (b" \n", "the event is empty"),
    ("42", "expected a JSON object, got int"),
    ("null", "expected a JSON object, got NoneType"),
    ('"text"', "expected a JSON object, got str"),
    ({"hello": "world"}, "unrecognised event"),
    (12.5, "a float is not an event"),
])
def test_garbage_is_rejected(event, needle):
    bad = one(event)
    assert isinstance(bad, Rejected) and needle in bad.reason
    if isinstance(event, (str, bytes)):
        assert bad.payload == (event.decode() if isinstance(event, bytes) else event)
    else:
        assert bad.payload


def test_empty_list_is_no_work_and_nested_lists_are_rejected():
    assert run("[]") == []
    items = run([[load("push_cloudevent.json")], load("push_cloudevent.json")])
    assert isinstance(items[0], Rejected) and "got list" in items[0].reason
    assert isinstance(items[1], PushCompleted)


def test_rejected_payload_masks_secrets_but_keeps_the_rest():
    event = {"source": "acs.cr", "type": "cr:Other", "specversion": "1.0", "id": "x",
             "data": {"SecurityToken": "made-up-sts-token", "Tag": "v1"}}
    bad = one(event)
    assert "made-up-sts-token" not in bad.payload
    assert json.loads(bad.payload)["data"] == {"SecurityToken": "***", "Tag": "v1"}


def test_to_rejected_event_for_the_ledger():
    bad = one("{broken")
    rec = bad.to_rejected_event(received_at=1700000000.0, request_id="1-req")
    assert rec.id.startswith("rej-") and rec.id == one("{broken").to_rejected_event(1.0).id
    assert (rec.reason, rec.payload, rec.source, rec.request_id) == (bad.reason, "{broken",
                                                                     "unknown", "1-req")
    named = one({**load("push_cloudevent.json"), "type": "cr:Artifact:ScanCompleted"})
    assert named.to_rejected_event(1.0).id == "demo-push-0001-7c35-447a-bd93-fab000000001"


def test_typed_events_are_frozen():
    ev = one(load("push_cloudevent.json"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.tag = "other"


def test_raw_event_is_logged_once_at_debug_without_the_token(caplog):
    caplog.set_level(logging.DEBUG, logger="acrsync.events")
    run(webhook())
    lines = [JsonFormatter().format(r) for r in caplog.records if r.name == "acrsync.events"]
    assert len(lines) == 1
    assert json.loads(lines[0])["msg"] == "event received"
    assert "team-a" in lines[0] and TOKEN not in lines[0]


def test_parse_is_the_same_function():
    assert parse is detect_and_parse


def test_input_is_not_modified():
    event = load("push_batch.json")
    before = copy.deepcopy(event)
    run(event)
    assert event == before


# ---- every string is checked before it is stored ------------------------------------------------------

LONE = "\udfff"           # valid JSON ("\\udfff"), but no UTF-8 encoder takes it


@pytest.mark.parametrize(("field", "value", "label"), [
    ("Digest", "sha256:ab", "digest"),
    ("Digest", "sha256:" + "g" * 64, "digest"),
    ("Digest", "sha256:" + "a" * 63 + LONE, "digest"),
    ("Digest", "md5:" + "a" * 64, "digest"),
    ("InstanceId", "cri-a b", "instance id"),
    ("InstanceId", "cri-" + LONE, "instance id"),
    ("RepoId", "crr-\n1", "repository id"),
    ("RegionId", "cn hangzhou", "region"),
    ("InstanceName", "name" + LONE, "instance name"),
    ("Tag", "v1" + LONE, "tag"),
])
def test_a_push_with_a_malformed_identifier_is_rejected(field, value, label):
    data = {"InstanceId": "cri-a", "RepoNamespaceName": "ns", "RepoName": "r", "Tag": "t", field: value}
    ev = one(json.dumps(_push(data)).encode())
    assert isinstance(ev, Rejected), ev
    assert label in ev.reason
    ev.reason.encode("utf-8")
    ev.payload.encode("utf-8")                       # the payload is storable too (base64 when it must be)


@pytest.mark.parametrize(("field", "value"), [
    ("SyncTaskId", "rst-" + LONE), ("SyncTaskId", "rst 1"), ("SyncBatchTaskId", "b" + LONE),
    ("TaskStatus", "SUCCESS" + LONE), ("InstanceId", "cri-\u0000"),
])
def test_a_sync_event_with_a_malformed_identifier_is_rejected(field, value):
    event = {"specversion": "1.0", "id": "demo-sync-1", "source": "acs.cr",
             "type": "cr:Artifact:SynchronizationCompleted",
             "data": {"SyncTaskId": "rst-1", "InstanceId": "cri-a", "TaskStatus": "SUCCESS", field: value}}
    ev = one(json.dumps(event).encode())
    assert isinstance(ev, Rejected) and ev.event_id == "demo-sync-1", ev
    codec.dumps(ev.to_rejected_event(0.0))      # what the ledger stores serialises


def test_an_unusable_event_id_gives_the_record_an_id_from_the_payload():
    event = _push({"InstanceId": "cri-a", "RepoNamespaceName": "ns", "RepoName": "r", "Tag": "t"})
    event["id"] = "ev-" + LONE
    ev = one(json.dumps(event).encode())
    assert isinstance(ev, Rejected) and ev.event_id is None and "event id" in ev.reason
    record = ev.to_rejected_event(0.0)
    assert record.id.startswith("rej-")
    codec.dumps(record)


def test_a_rejected_payload_is_bounded_with_its_size_and_hash():
    import hashlib

    junk = json.dumps({"specversion": "1.0", "id": "demo-junk-1", "source": "acs.cr",
                       "type": "cr:Artifact:PushCompleted", "data": {"x": "é" * (3 * 1024 * 1024)}})
    ev = one(junk.encode())
    assert isinstance(ev, Rejected)
    record = ev.to_rejected_event(0.0)
    full = ev.payload.encode("utf-8")
    kept = record.payload.encode("utf-8")
    assert len(kept) <= 64 * 1024 and full.startswith(kept) and len(full) > 5 * 1024 * 1024
    assert f"of {len(full)} bytes" in record.reason
    assert hashlib.sha256(full).hexdigest() in record.reason
    small = one(b'{"specversion": "1.0", "id": "demo-small-1", "source": "acs.cr", "type": "other"}')
    assert small.to_rejected_event(0.0).payload == small.payload      # a small one is kept whole

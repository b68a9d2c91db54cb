"""Fuzzing acrsync.events.detect_and_parse: it never raises, and nothing it cannot use is lost."""

from __future__ import annotations

import base64
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from acrsync import codec
from acrsync.events import PushCompleted, Rejected, SyncCompleted, TimerTick, detect_and_parse
from acrsync.jsonlog import is_secret_name

EVENTS = Path(__file__).resolve().parents[2] / "events"
SAMPLES = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(EVENTS.glob("*.json"))}
TOKEN = "demo-webhook-token-not-secret"     # made-up demo token
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

KEYS = st.sampled_from(["specversion", "type", "source", "id", "time", "data", "data_base64", "InstanceId",
                        "instanceId", "RepoNamespaceName", "RepoName", "repoName", "Tag", "tag", "Digest",
                        "RepoFullName", "SyncTaskId", "TaskStatus", "ImageFrom", "triggerName", "triggerTime",
                        "payload", "requestContext", "rawPath", "headers", "queryParameters", "body",
                        "isBase64Encoded", "push_data", "repository", "token",
                        "x-acrsync-token"]) | st.text(max_size=8)
# Text no UTF-8 encoder takes: lone surrogates (valid JSON as "\\udfff"), alone or inside a plausible value,
# and other unusable characters (controls, spaces) where identifiers are expected.
SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
UNENCODABLE = (st.text(SURROGATES, min_size=1, max_size=3)
               | st.builds(lambda prefix, bad: prefix + bad, st.sampled_from(["sha256:" + "a" * 63, "rst-",
                                                                              "cri-a",
                                                                              "v1", "team-a"]),
                           st.text(SURROGATES | st.sampled_from(["\x00", " ", "\n"]),
                                   min_size=1, max_size=2)))
SCALARS = (st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
           | st.sampled_from(["acs.cr", "cr:Artifact:PushCompleted", "cr:Artifact:SynchronizationCompleted",
                              "1.0",
                              TOKEN, "cri-a", "team-a/api", "v1", "POST", '{"mode":"reconcile"}', "",
                              "sha256:" + "9f" * 32, "rst-demo0001"])
           | st.text(max_size=20) | UNENCODABLE)
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS,
                                                                                         inner, max_size=5),
                    max_leaves=25)


def _has_secret_key(value) -> bool:
    if isinstance(value, dict):
        return any(is_secret_name(k) or _has_secret_key(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_secret_key(v) for v in value)
    return isinstance(value, str) and "=" in value


def _as_sent(value):
    """``value`` as the handler decodes it from JSON text (a surrogate pair there becomes one character)."""
    return json.loads(json.dumps(value))


def _payload_value(payload: str):
    """A kept payload back as JSON: text, or base64 of its bytes when it held unencodable text."""
    try:
        return json.loads(payload)
    except ValueError:
        return json.loads(base64.b64decode(payload).decode("utf-8", "surrogatepass"))


def check(items, parsed_json=None) -> None:
    """Each item is typed; a Rejected has a reason and keeps the payload (whole, when no secret was
    masked)."""
    assert isinstance(items, list)
    elements = parsed_json if isinstance(parsed_json, list) else [parsed_json]
    if parsed_json is not None or isinstance(parsed_json, list):
        assert len(items) == len(elements)
    for i, item in enumerate(items):
        assert isinstance(item, (PushCompleted, SyncCompleted, TimerTick, Rejected))
        if isinstance(item, (PushCompleted, SyncCompleted)):
            codec.dumps(item)                       # every field it would store serialises
            continue
        if not isinstance(item, Rejected):
            continue
        codec.dumps(item.to_rejected_event(0.0))    # what the ledger stores serialises
        assert item.reason.strip() and not item.reason.startswith("internal error"), item.reason
        assert item.source in ("eventbridge", "webhook", "timer", "unknown")
        item.payload.encode("utf-8")                             # storable as text
        element = elements[i] if i < len(elements) else None
        if parsed_json is not None and not _has_secret_key(element):
            assert _payload_value(item.payload) == element


def run(event):
    return detect_and_parse(event, webhook_token=TOKEN, source_instance_id="cri-demosource01")


@FUZZ
@given(st.binary(max_size=300))
def test_arbitrary_bytes(blob):
    items = run(blob)
    check(items)
    try:
        text = blob.decode("utf-8")
    except UnicodeDecodeError:
        [bad] = items
        assert base64.b64decode(bad.payload) == blob
        return
    try:
        json.loads(text)
    except ValueError:
        [bad] = items
        assert isinstance(bad, Rejected) and bad.payload == text


@FUZZ
@given(JSON)
def test_arbitrary_json_values(value):
    check(run(json.dumps(value).encode()), _as_sent(value))
    if isinstance(value, (dict, list)):
        check(run(value), value)


def _mutate(draw, value, depth=0):
    """Change one spot somewhere in ``value``: replace it, delete a key, or recurse; JSON text bodies too."""
    action = draw(st.sampled_from(["replace", "descend", "descend", "delete", "add"]))
    if action == "replace" or depth > 6:
        return draw(JSON)
    if isinstance(value, dict) and value:
        key = draw(st.sampled_from(sorted(value)))
        out = dict(value)
        if action == "delete":
            del out[key]
        elif action == "add":
            out[draw(KEYS)] = draw(JSON)
        else:
            out[key] = _mutate(draw, value[key], depth + 1)
        return out
    if isinstance(value, list) and value:
        i = draw(st.integers(0, len(value) - 1))
        out = list(value)
        if action == "delete":
            del out[i]
        else:
            out[i] = _mutate(draw, value[i], depth + 1)
        return out
    if isinstance(value, str) and value[:1] in "{[":
        try:
            inner = json.loads(value)
        except ValueError:
            return draw(JSON)
        return json.dumps(_mutate(draw, inner, depth + 1))
    return draw(JSON)


@st.composite
def mutated_samples(draw):
    sample = SAMPLES[draw(st.sampled_from(sorted(SAMPLES)))]
    for _ in range(draw(st.integers(1, 3))):
        sample = _mutate(draw, sample)
    return sample


@FUZZ
@given(mutated_samples())
def test_mutated_samples(event):
    check(run(json.dumps(event).encode()), _as_sent(event))


@FUZZ
@given(mutated_samples(), st.integers(0, 400), st.binary(min_size=1, max_size=4))
def test_corrupted_sample_bytes(event, at, junk):
    raw = json.dumps(event).encode()
    at = min(at, len(raw))
    check(run(raw[:at] + junk + raw[at:]))


@FUZZ
@given(mutated_samples(), st.sampled_from(["Digest", "SyncTaskId", "InstanceId", "Tag", "RepoId",
                                           "SyncBatchTaskId",
                                           "TaskStatus", "RegionId"]), UNENCODABLE)
def test_unencodable_text_in_any_field_is_rejected_never_raised(event, key, bad):
    """A lone surrogate or control character in an identifier: a Rejected, never a typed event or an error."""
    if not isinstance(event, dict):
        event = {"value": event}
    if isinstance(event.get("data"), dict):
        event = {**event, "data": {**event["data"], key: bad}}
    else:
        event = {**event, key: bad}
    items = run(json.dumps(event).encode())
    check(items, _as_sent(event))
    for item in items:
        if isinstance(item, (PushCompleted, SyncCompleted)):
            typed = {k: v for k, v in codec.dump(item).items() if k != "raw"}
            assert bad not in json.dumps(typed, ensure_ascii=False), item
            if bad.strip() == bad:          # anything but surrounding whitespace, which parsing strips:
                assert bad not in codec.dumps(item), item     # not even in the event as sent

"""acrsync.codec: the domain types to plain JSON and back, and the validated config form the function reads
instead of YAML and pydantic."""

from __future__ import annotations

import dataclasses
import json

import pytest
import yaml

from acrsync import codec
from acrsync.config import ConfigError, load_config, parse_config, validated_path, write_validated
from acrsync.demo import config_doc
from acrsync.grants.cache import Verdict
from acrsync.grants.findings import Evidence, Fix, PolicyName, finding
from acrsync.model import SyncTask
from acrsync.records import Attempt, ErrorInfo, ImageRef, Origin, Record, Status


def record(**kw) -> Record:
    base = dict(image=ImageRef(instance_id="cri-a", namespace="ns", repo="app", tag="v1", digest="ab" * 32),
                target="beijing", origin=Origin.PUSH, status=Status.PENDING, task_id="rst-1",
                history=[Attempt(task_id="rst-1", status="PENDING", created_at=1.5)],
                last_error=ErrorInfo(code="Throttling", message="slow down"),
                finding=finding("ROLE_MISSING", "beijing", "no role",
                                evidence=[Evidence(source="GetRole", statement=0,
                                                   policy=PolicyName(name="p", type="Custom"))],
                                fix=Fix(summary="create it", commands=["aliyun ram CreateRole"])),
                created_at=1.0, updated_at=2.0, version=3)
    return Record(**{**base, **kw})


def test_a_record_survives_a_round_trip():
    r = record()
    back = Record.from_stored(r.stored())
    assert back == r
    assert back.status is Status.PENDING and back.origin is Origin.PUSH
    assert isinstance(back.history[0], Attempt) and back.finding is not None
    assert back.finding.evidence[0].policy == PolicyName(name="p", type="Custom")


def test_dump_is_plain_json_with_enum_values_and_the_blocks_flag():
    doc = json.loads(record().stored())
    assert doc["status"] == "PENDING" and doc["origin"] == "push"
    assert doc["finding"]["blocks"] is True                      # computed, and carried by every dump
    assert doc["next_retry_at"] is None                          # every field, defaults included


def test_a_verdict_and_a_nested_default_round_trip():
    v = Verdict(target="b", clean=False, findings=[finding("CHECK_FAILED", "b", "x")], checked_at=1,
                expires_at=2)
    assert codec.loads(Verdict, codec.dumps(v)) == v
    task = codec.load(SyncTask, {"task_id": "t-1", "status": "SUCCESS", "source": {"tag": "v1"}})
    assert task.source.tag == "v1" and task.target.tag == ""


def test_unknown_keys_are_ignored_so_a_newer_writer_does_not_break_a_reader():
    doc = json.loads(record().stored())
    doc["added_later"] = {"anything": 1}
    assert Record.from_stored(json.dumps(doc)) == record()


@pytest.mark.parametrize("change,where", [
    ({"status": "NOPE"}, "Record.status"),
    ({"attempts": "3"}, "Record.attempts"),
    ({"attempts": True}, "Record.attempts"),
    ({"history": {"task_id": "x"}}, "Record.history"),
    ({"image": {"namespace": "ns"}}, "Record.image.instance_id"),
    ({"created_at": None}, "Record.created_at"),
])
def test_a_value_of_the_wrong_shape_is_refused_with_its_path(change, where):
    doc = {**json.loads(record().stored()), **change}
    with pytest.raises(codec.CodecError, match=where.replace(".", r"\.")):
        Record.from_stored(json.dumps(doc))


def test_not_json_and_not_an_object_are_codec_errors():
    with pytest.raises(codec.CodecError):
        Record.from_stored("{not json")
    with pytest.raises(codec.CodecError):
        Record.from_stored("[1, 2]")


def test_a_record_written_before_findings_were_typed_still_reads():
    doc = json.loads(record(finding=None).stored())
    doc["finding"] = {"code": "ROLE_MISSING", "kind": "grant", "message": "no role", "fix": "create the role"}
    back = Record.from_stored(json.dumps(doc))
    assert back.finding is not None and back.finding.fix is not None
    f = back.finding
    assert (f.code, f.severity, f.target) == ("ROLE_MISSING", "error", "beijing")
    assert back.finding.fix.summary == "create the role"


# ---- the validated config form ---------------------------------------------------------------------------

@pytest.fixture()
def packaged(tmp_path):
    path = tmp_path / "acrsync.yaml"
    path.write_text(yaml.safe_dump(config_doc()), encoding="utf-8")
    write_validated(parse_config(config_doc()), path)
    return path


def test_the_validated_form_reads_back_as_the_same_config(packaged):
    assert load_config(packaged) == parse_config(config_doc())
    assert json.loads(validated_path(packaged).read_text())["sha256"]


def test_an_edited_file_is_validated_again_not_read_from_a_stale_form(packaged):
    doc = config_doc()
    doc["targets"][0]["priority"] = 9                            # invalid: 1-5
    packaged.write_text(yaml.safe_dump(doc), encoding="utf-8")
    with pytest.raises(ConfigError, match="priority"):
        load_config(packaged)


def test_a_form_written_by_another_acrsync_version_is_not_trusted(packaged):
    side = validated_path(packaged)
    doc = json.loads(side.read_text())
    doc["acrsync"] = "0.0.0-other"
    doc["config"]["targets"][0]["priority"] = 4                  # would show if the form were read
    side.write_text(json.dumps(doc))
    assert load_config(packaged).targets[0].priority == parse_config(config_doc()).targets[0].priority


def test_a_corrupt_form_falls_back_to_validating_the_file(packaged):
    validated_path(packaged).write_text("{broken", encoding="utf-8")
    assert load_config(packaged) == parse_config(config_doc())


def test_config_types_are_frozen_and_replace_keeps_the_cross_checks():
    cfg = parse_config(config_doc())
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.targets[0].name = "other"                            # type: ignore[misc]
    with pytest.raises(ValueError, match="the target is the source instance"):
        dataclasses.replace(cfg, targets=[dataclasses.replace(cfg.targets[0],
                                                              instance_id=cfg.source.instance_id)])


def test_field_types_are_read_as_get_type_hints_reads_them():
    # acrsync.codec evaluates each annotation text once per module instead of calling get_type_hints per
    # class (a cold start's config read); both must give the same types for every acrsync dataclass.
    import dataclasses
    import importlib
    import pkgutil
    import re
    import typing

    import acrsync
    from acrsync import codec

    def shown(tp):
        return re.sub(r" at 0x[0-9a-f]+", "", repr(tp))

    compared = 0
    for info in pkgutil.walk_packages(acrsync.__path__, "acrsync."):
        if ".cli" in info.name or info.name.endswith(("demo", "__main__")):
            continue
        module = importlib.import_module(info.name)
        for obj in list(vars(module).values()):
            if not (isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == info.name):
                continue
            try:
                want = typing.get_type_hints(obj, include_extras=True)
            except NameError:            # a name only the type checker sees: codec falls back to it too
                continue
            codec._HINTS.pop(obj, None)
            got = codec._hints(obj)
            assert {k: shown(v) for k, v in got.items()} == {k: shown(want[k]) for k in got}, obj
            compared += 1
    assert compared > 60

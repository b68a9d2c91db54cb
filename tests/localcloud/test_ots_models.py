"""Tablestore rules on the backend directly (pure: no HTTP; the state-file test writes to tmp_path)."""

from __future__ import annotations

import pytest
from tablestore.protobuf import table_store_filter_pb2 as fpb

from localcloud.ots import models
from localcloud.ots.filters import Single
from localcloud.ots.models import (
    EXPECT_EXIST,
    EXPECT_NOT_EXIST,
    OtsBackend,
    OtsError,
    PkColumn,
    ReadSpec,
    RowCondition,
)
from localcloud.ots.plainbuffer import (
    AUTO_INCREMENT,
    INF_MAX,
    INF_MIN,
    OP_DELETE_ALL,
    OP_DELETE_ONE,
    OP_INCREMENT,
    Cell,
)
from localcloud.ots.plainbuffer import RowChange as Change

INST = "inst"


class Clock:
    def __init__(self):
        self.t = 1_700_000_000.0

    def __call__(self):
        return self.t


@pytest.fixture
def backend():
    b = OtsBackend(now=Clock())
    b.create_table(INST, models.table_from_schema("t", [PkColumn("p", "STRING"), PkColumn("n", "INTEGER")]))
    return b


def pk(p, n):
    return [("p", p), ("n", n)]


def put(b, key, cells=(), cond=RowCondition()):
    return b.write_row(INST, "t", "PUT", Change(key, [Cell(n, v) for n, v in cells]), cond)


def get(b, key, **spec):
    return b.get_row(INST, "t", key, ReadSpec(**spec))


def expect_error(code, fn, *args):
    with pytest.raises(OtsError) as info:
        fn(*args)
    assert info.value.code == code
    return info.value


def test_create_twice_and_missing_table(backend):
    err = expect_error("OTSObjectAlreadyExist", backend.create_table, INST,
                       models.table_from_schema("t", [PkColumn("p", "STRING")]))
    assert err.status == 409
    err = expect_error("OTSObjectNotExist", backend.get_row, INST, "nope", [("p", "x")], ReadSpec())
    assert (err.status, err.message) == (404, "Requested table does not exist.")
    assert backend.list_tables("other-instance") == []


def test_table_schema_rules():
    b = OtsBackend()
    expect_error("OTSParameterInvalid", b.create_table, INST,
                 models.table_from_schema("1bad", [PkColumn("p", "STRING")]))
    expect_error("OTSParameterInvalid", b.create_table, INST, models.table_from_schema("t", []))
    expect_error("OTSParameterInvalid", b.create_table, INST,
                 models.table_from_schema("t", [PkColumn("p", "INTEGER", auto_increment=True)]))


@pytest.mark.parametrize("key, words", [
    ([("p", "a")], "size"), ([("p", "a"), ("m", 1)], "name"), ([("p", 1), ("n", 1)], "type"),
    ([("p", INF_MIN), ("n", 1)], "INF_MIN"), ([("p", "a"), ("n", AUTO_INCREMENT)], "PK_AUTO_INCR"),
])
def test_primary_key_must_match_the_schema(backend, key, words):
    err = expect_error("OTSParameterInvalid", put, backend, key)
    assert words in err.message and err.status == 400


def test_row_existence_conditions(backend):
    put(backend, pk("a", 1), [("v", 1)], RowCondition(EXPECT_NOT_EXIST))
    err = expect_error("OTSConditionCheckFail", put, backend, pk("a", 1), [], RowCondition(EXPECT_NOT_EXIST))
    assert (err.status, err.message) == (403, "Condition check failed.")
    expect_error("OTSConditionCheckFail", put, backend, pk("b", 1), [], RowCondition(EXPECT_EXIST))
    put(backend, pk("a", 1), [("v", 2)], RowCondition(EXPECT_EXIST))
    assert get(backend, pk("a", 1))[1] == [("v", 2, 1_700_000_000_000)]


def test_column_condition_guards_a_write(backend):
    put(backend, pk("a", 1), [("version", 1)])
    stale = RowCondition(EXPECT_EXIST, Single(fpb.CT_EQUAL, "version", 0, False))
    expect_error("OTSConditionCheckFail", backend.write_row, INST, "t", "UPDATE",
                 Change(pk("a", 1), [Cell("version", 1)]), stale)
    fresh = RowCondition(EXPECT_EXIST, Single(fpb.CT_EQUAL, "version", 1, False))
    backend.write_row(INST, "t", "UPDATE", Change(pk("a", 1), [Cell("version", 2)]), fresh)
    assert get(backend, pk("a", 1))[1][0][1] == 2


def test_update_put_delete_increment(backend):
    put(backend, pk("a", 1), [("keep", "x"), ("drop", 1), ("old", 5), ("n", 1)])
    ts = get(backend, pk("a", 1))[1][2][2]
    backend.write_row(INST, "t", "UPDATE", Change(pk("a", 1), [
        Cell("new", "y"), Cell("drop", op=OP_DELETE_ALL), Cell("old", op=OP_DELETE_ONE, timestamp=ts),
        Cell("n", 41, op=OP_INCREMENT), Cell("fresh", 3, op=OP_INCREMENT)]), RowCondition())
    assert {n: v for n, v, _ in get(backend, pk("a", 1))[1]} == {"keep": "x", "new": "y", "n": 42, "fresh": 3}
    err = expect_error("OTSParameterInvalid", backend.write_row, INST, "t", "UPDATE",
                       Change(pk("a", 1), [Cell("keep", 1, op=OP_INCREMENT)]), RowCondition())
    assert "INTEGER" in err.message


def test_update_creates_a_missing_row_but_a_delete_only_update_does_not(backend):
    backend.write_row(INST, "t", "UPDATE", Change(pk("a", 1), [Cell("x", op=OP_DELETE_ALL)]), RowCondition())
    assert get(backend, pk("a", 1)) is None
    backend.write_row(INST, "t", "UPDATE", Change(pk("a", 1), [Cell("x", 1)]), RowCondition())
    assert get(backend, pk("a", 1)) == (pk("a", 1), [("x", 1, 1_700_000_000_000)])


def test_delete_row_conditions(backend):
    expect_error("OTSParameterInvalid", backend.write_row, INST, "t", "DELETE", Change(pk("a", 1)),
                 RowCondition(EXPECT_NOT_EXIST))
    expect_error("OTSConditionCheckFail", backend.write_row, INST, "t", "DELETE", Change(pk("a", 1)),
                 RowCondition(EXPECT_EXIST))
    put(backend, pk("a", 1))
    backend.write_row(INST, "t", "DELETE", Change(pk("a", 1)), RowCondition(EXPECT_EXIST))
    assert get(backend, pk("a", 1)) is None


def test_columns_to_get_and_filter(backend):
    put(backend, pk("a", 1), [("x", 1), ("y", 2)])
    assert get(backend, pk("a", 1), columns_to_get=("y",))[1] == [("y", 2, 1_700_000_000_000)]
    assert get(backend, pk("a", 1), columns_to_get=("zzz",)) is None
    assert get(backend, pk("a", 1), columns_to_get=("p",)) == (pk("a", 1), [])
    assert get(backend, pk("a", 1), row_filter=Single(fpb.CT_GREATER_THAN, "x", 5, True)) is None


def test_get_range_both_directions_with_pages(backend):
    for i in range(5):
        put(backend, pk("a", i), [("v", i)])
    put(backend, pk("b", 0))
    lo, hi = [("p", "a"), ("n", INF_MIN)], [("p", "a"), ("n", INF_MAX)]
    rows, nxt = backend.get_range(INST, "t", models.FORWARD, lo, hi, 2, ReadSpec())
    assert [r[0] for r in rows] == [pk("a", 0), pk("a", 1)] and nxt == pk("a", 2)
    rows, nxt = backend.get_range(INST, "t", models.FORWARD, nxt, hi, 10, ReadSpec())
    assert [r[0][1][1] for r in rows] == [2, 3, 4] and nxt is None
    rows, nxt = backend.get_range(INST, "t", models.BACKWARD, hi, lo, 3, ReadSpec())
    assert [r[0][1][1] for r in rows] == [4, 3, 2] and nxt == pk("a", 1)
    rows, _ = backend.get_range(INST, "t", models.BACKWARD, pk("a", 3), pk("a", 1), None, ReadSpec())
    assert [r[0][1][1] for r in rows] == [3, 2]
    for direction, first, last in ((models.FORWARD, hi, lo), (models.BACKWARD, lo, hi)):
        expect_error("OTSParameterInvalid", backend.get_range, INST, "t", direction, first, last, None,
                     ReadSpec())


def test_batch_write_limits_and_per_row_results(backend):
    items = [models.WriteItem("t", "PUT", Change(pk("a", i)), RowCondition()) for i in range(201)]
    err = expect_error("OTSParameterInvalid", backend.batch_write, INST, items)
    assert "200" in err.message
    dup = [models.WriteItem("t", "PUT", Change(pk("a", 1)), RowCondition())] * 2
    expect_error("OTSParameterInvalid", backend.batch_write, INST, dup)
    put(backend, pk("a", 1))
    results = backend.batch_write(INST, [
        models.WriteItem("t", "PUT", Change(pk("a", 1)), RowCondition(EXPECT_NOT_EXIST)),
        models.WriteItem("t", "PUT", Change(pk("a", 2)), RowCondition(EXPECT_NOT_EXIST)),
        models.WriteItem("nope", "PUT", Change(pk("a", 3)), RowCondition())])
    assert [(r.ok, r.error and r.error.code) for r in results] == [
        (False, "OTSConditionCheckFail"), (True, None), (False, "OTSObjectNotExist")]


def test_auto_increment_fills_increasing_values():
    b = OtsBackend(now=Clock())
    b.create_table(INST, models.table_from_schema("q", [PkColumn("p", "STRING"),
                                                        PkColumn("seq", "INTEGER", auto_increment=True)]))
    first = b.write_row(INST, "q", "PUT", Change([("p", "a"), ("seq", AUTO_INCREMENT)]), RowCondition())
    second = b.write_row(INST, "q", "PUT", Change([("p", "a"), ("seq", AUTO_INCREMENT)]), RowCondition())
    assert first[1][1] < second[1][1]
    assert b.get_row(INST, "q", second, ReadSpec()) == (second, [])


def test_state_file_survives_a_new_backend(tmp_path):
    path = str(tmp_path / "ots.json")
    b = OtsBackend(state_file=path, now=Clock())
    b.create_table(INST, models.table_from_schema("t", [PkColumn("p", "STRING"), PkColumn("n", "INTEGER")]))
    put(b, pk("a", 1), [("s", "x"), ("i", 1), ("d", 1.0), ("b", False), ("x", b"\x00")])
    reopened = OtsBackend(state_file=path)
    assert reopened.get_row(INST, "t", pk("a", 1), ReadSpec()) == b.get_row(INST, "t", pk("a", 1), ReadSpec())
    assert [type(v) for _n, v, _t in reopened.get_row(INST, "t", pk("a", 1), ReadSpec())[1]] == [
        bool, float, int, str, bytes]
    (tmp_path / "ots.json").write_text("{not json")
    with pytest.raises(RuntimeError, match="Delete it"):
        OtsBackend(state_file=path)

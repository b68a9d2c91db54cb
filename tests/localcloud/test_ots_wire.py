"""Tablestore through the real ``tablestore.OTSClient`` against LocalCloud over HTTP (no SDK mocks).

The client runs with its native codec enabled and disabled, so one interpreter covers both the C++/C
paths (where built) and the pure-Python encoder and PlainBuffer reader.
"""

from __future__ import annotations

import threading

import pytest
from tablestore import (
    INF_MAX,
    INF_MIN,
    PK_AUTO_INCR,
    BatchGetRowRequest,
    BatchWriteRowRequest,
    CapacityUnit,
    ComparatorType,
    CompositeColumnCondition,
    Condition,
    DeleteRowItem,
    Direction,
    LogicalOperator,
    OTSClient,
    OTSServiceError,
    PutRowItem,
    ReservedThroughput,
    ReturnType,
    Row,
    SingleColumnCondition,
    TableInBatchGetRowItem,
    TableInBatchWriteRowItem,
    TableMeta,
    TableOptions,
    UpdateRowItem,
)
from tablestore.retry import DefaultRetryPolicy, NoRetryPolicy

from localcloud.server import LocalCloud
from tests.demo_world import SMALL_A

# Made-up demo account and key: localcloud accepts them, no cloud does.
ACCOUNT_ID = SMALL_A
KEY_ID = "LTAIdemoOtsKeyA00000001"
KEY_SECRET = "demo-secret-not-real-A"
SCENARIO = {"accounts": [{"id": ACCOUNT_ID, "access_keys": [{"id": KEY_ID, "secret": KEY_SECRET}]}]}
INSTANCE = "acrsync"
PK = [("key", "STRING"), ("n", "INTEGER")]


@pytest.fixture(scope="module")
def cloud():
    with LocalCloud(SCENARIO) as running:
        yield running


@pytest.fixture(params=[True, False], ids=["native", "python"])
def client(request, cloud):
    return OTSClient(cloud.url, KEY_ID, KEY_SECRET, INSTANCE, retry_policy=NoRetryPolicy(),
                     enable_native=request.param)


_tables = iter(range(10**6))


@pytest.fixture
def table(client):
    name = f"t{next(_tables)}"
    client.create_table(TableMeta(name, PK), TableOptions(), ReservedThroughput(CapacityUnit(0, 0)))
    return name


def service_error(fn, *args, **kwargs) -> OTSServiceError:
    with pytest.raises(OTSServiceError) as info:
        fn(*args, **kwargs)
    return info.value


def cols(row) -> dict:
    return {c[0]: c[1] for c in row.attribute_columns}


# --- tables --------------------------------------------------------------------------------------


def test_table_lifecycle(client):
    meta = TableMeta("lifecycle", [("a", "STRING"), ("b", "BINARY"), ("c", "INTEGER", PK_AUTO_INCR)],
                     [("status", "STRING"), ("size", "INTEGER")])
    client.create_table(meta, TableOptions(time_to_live=-1, max_version=1),
                        ReservedThroughput(CapacityUnit(0, 0)))
    described = client.describe_table("lifecycle")
    assert described.table_meta.schema_of_primary_key == [("a", "STRING"), ("b", "BINARY"),
                                                          ("c", "INTEGER", PK_AUTO_INCR)]
    assert described.table_meta.defined_columns == [("status", "STRING"), ("size", "INTEGER")]
    assert described.table_options.max_version == 1
    assert "lifecycle" in client.list_table()
    err = service_error(client.create_table, meta, TableOptions(), ReservedThroughput(CapacityUnit(0, 0)))
    assert (err.get_http_status(), err.get_error_code()) == (409, "OTSObjectAlreadyExist")
    client.delete_table("lifecycle")
    assert "lifecycle" not in client.list_table()
    err = service_error(client.describe_table, "lifecycle")
    assert (err.get_http_status(), err.get_error_code(), err.get_error_message()) == (
        404, "OTSObjectNotExist", "Requested table does not exist.")


def test_instances_keep_their_own_tables(cloud, client, table):
    other = OTSClient(cloud.url, KEY_ID, KEY_SECRET, "another-instance", retry_policy=NoRetryPolicy())
    assert table not in other.list_table()
    err = service_error(other.get_row, table, [("key", "a"), ("n", 1)])
    assert err.get_error_code() == "OTSObjectNotExist"


# --- single rows ---------------------------------------------------------------------------------


def test_put_and_get_every_value_type(client, table):
    pk = [("key", "ümlaut/键"), ("n", -(2**63))]
    client.put_row(table, Row(pk, [("s", "text"), ("i", 2**63 - 1), ("d", -1.5), ("b", False),
                                   ("x", bytearray(b"\x00\xffbin")), ("t", "stamped", 1_600_000_000_000)]))
    _, row, _ = client.get_row(table, pk)
    assert row.primary_key == pk
    assert cols(row) == {"s": "text", "i": 2**63 - 1, "d": -1.5, "b": False, "x": bytearray(b"\x00\xffbin"),
                         "t": "stamped"}
    assert [c[2] for c in row.attribute_columns if c[0] == "t"] == [1_600_000_000_000]
    _, missing, _ = client.get_row(table, [("key", "nobody"), ("n", 0)])
    assert missing is None


def test_primary_key_must_match_the_schema(client, table):
    for bad in ([("key", "a")], [("key", 1), ("n", 1)], [("n", 1), ("key", "a")]):
        err = service_error(client.put_row, table, Row(bad, [("v", 1)]))
        assert (err.get_http_status(), err.get_error_code()) == (400, "OTSParameterInvalid")


def test_row_existence_conditions(client, table):
    pk = [("key", "once"), ("n", 1)]
    client.put_row(table, Row(pk, [("v", 1)]), Condition("EXPECT_NOT_EXIST"))
    err = service_error(client.put_row, table, Row(pk, [("v", 2)]), Condition("EXPECT_NOT_EXIST"))
    assert (err.get_http_status(), err.get_error_code(), err.get_error_message()) == (
        403, "OTSConditionCheckFail", "Condition check failed.")
    err = service_error(client.put_row, table, Row([("key", "never"), ("n", 1)], [("v", 1)]),
                        Condition("EXPECT_EXIST"))
    assert err.get_error_code() == "OTSConditionCheckFail"
    client.put_row(table, Row(pk, [("v", 3)]), Condition("EXPECT_EXIST"))
    client.put_row(table, Row(pk, [("w", 4)]), Condition("IGNORE"))
    assert cols(client.get_row(table, pk)[1]) == {"w": 4}


@pytest.mark.parametrize("comparator, value, passes", [
    (ComparatorType.EQUAL, 5, True), (ComparatorType.EQUAL, 4, False),
    (ComparatorType.NOT_EQUAL, 4, True), (ComparatorType.NOT_EQUAL, 5, False),
    (ComparatorType.GREATER_THAN, 4, True), (ComparatorType.GREATER_THAN, 5, False),
    (ComparatorType.GREATER_EQUAL, 5, True), (ComparatorType.GREATER_EQUAL, 6, False),
    (ComparatorType.LESS_THAN, 6, True), (ComparatorType.LESS_THAN, 5, False),
    (ComparatorType.LESS_EQUAL, 5, True), (ComparatorType.LESS_EQUAL, 4, False),
])
def test_single_column_condition_comparators(client, table, comparator, value, passes):
    pk = [("key", "cmp"), ("n", 1)]
    client.put_row(table, Row(pk, [("v", 5)]))
    cond = Condition("EXPECT_EXIST", SingleColumnCondition("v", value, comparator))
    update = Row(pk, {"PUT": [("touched", True)]})
    if passes:
        client.update_row(table, update, cond)
        assert cols(client.get_row(table, pk)[1])["touched"] is True
    else:
        err = service_error(client.update_row, table, update, cond)
        assert err.get_error_code() == "OTSConditionCheckFail"


def test_pass_if_missing_and_composite_conditions(client, table):
    pk = [("key", "comp"), ("n", 1)]
    client.put_row(table, Row(pk, [("status", "QUEUED"), ("version", 1)]))
    absent_ok = Condition("IGNORE", SingleColumnCondition("owner", "x", ComparatorType.EQUAL,
                                                          pass_if_missing=True))
    client.update_row(table, Row(pk, {"PUT": [("a", 1)]}), absent_ok)
    absent_fails = Condition("IGNORE", SingleColumnCondition("owner", "x", ComparatorType.EQUAL,
                                                             pass_if_missing=False))
    assert service_error(client.update_row, table, Row(pk, {"PUT": [("a", 2)]}), absent_fails
                         ).get_error_code() == "OTSConditionCheckFail"

    both = CompositeColumnCondition(LogicalOperator.AND)
    both.add_sub_condition(SingleColumnCondition("status", "QUEUED", ComparatorType.EQUAL))
    both.add_sub_condition(SingleColumnCondition("version", 1, ComparatorType.EQUAL))
    client.update_row(table, Row(pk, {"PUT": [("status", "PENDING")], "INCREMENT": [("version", 1)]}),
                      Condition("EXPECT_EXIST", both))
    assert service_error(client.update_row, table, Row(pk, {"PUT": [("status", "X")]}),
                         Condition("EXPECT_EXIST", both)).get_error_code() == "OTSConditionCheckFail"

    either = CompositeColumnCondition(LogicalOperator.OR)
    either.add_sub_condition(SingleColumnCondition("status", "SUCCESS", ComparatorType.EQUAL))
    either.add_sub_condition(SingleColumnCondition("version", 2, ComparatorType.EQUAL))
    negated = CompositeColumnCondition(LogicalOperator.NOT)
    negated.add_sub_condition(SingleColumnCondition("status", "SUCCESS", ComparatorType.EQUAL))
    guard = CompositeColumnCondition(LogicalOperator.AND)
    guard.add_sub_condition(either)
    guard.add_sub_condition(negated)
    client.update_row(table, Row(pk, {"PUT": [("status", "SUCCESS")]}), Condition("EXPECT_EXIST", guard))
    assert service_error(client.update_row, table, Row(pk, {"PUT": [("status", "AGAIN")]}),
                         Condition("EXPECT_EXIST", guard)).get_error_code() == "OTSConditionCheckFail"
    assert cols(client.get_row(table, pk)[1]) == {"status": "SUCCESS", "version": 2, "a": 1}


def test_update_row_operations(client, table):
    pk = [("key", "upd"), ("n", 7)]
    stamp = 1_650_000_000_000
    client.put_row(table, Row(pk, [("keep", "k"), ("gone", 1), ("one", "v", stamp), ("count", 40)]))
    client.update_row(table, Row(pk, {"PUT": [("new", "n")], "DELETE_ALL": ["gone"],
                                      "DELETE": [("one", None, stamp)], "INCREMENT": [("count", 2)]}),
                      Condition("EXPECT_EXIST"))
    assert cols(client.get_row(table, pk)[1]) == {"keep": "k", "new": "n", "count": 42}
    client.update_row(table, Row(pk, {"DELETE": [("keep", None, 1)]}), Condition("IGNORE"))
    assert "keep" in cols(client.get_row(table, pk)[1])          # another version's timestamp: no-op
    err = service_error(client.update_row, table, Row(pk, {"INCREMENT": [("keep", 1)]}), Condition("IGNORE"))
    assert err.get_error_code() == "OTSParameterInvalid"
    fresh = [("key", "upd"), ("n", 8)]
    client.update_row(table, Row(fresh, {"INCREMENT": [("count", 1)]}), Condition("EXPECT_NOT_EXIST"))
    assert cols(client.get_row(table, fresh)[1]) == {"count": 1}


def test_delete_row_with_conditions(client, table):
    pk = [("key", "del"), ("n", 1)]
    client.put_row(table, Row(pk, [("status", "SUCCESS")]))
    wrong = Condition("EXPECT_EXIST", SingleColumnCondition("status", "ERROR", ComparatorType.EQUAL))
    assert service_error(client.delete_row, table, Row(pk), wrong).get_error_code() == "OTSConditionCheckFail"
    client.delete_row(table, Row(pk), Condition("EXPECT_EXIST"))
    assert client.get_row(table, pk)[1] is None
    assert service_error(client.delete_row, table, Row(pk), Condition("EXPECT_EXIST")
                         ).get_error_code() == "OTSConditionCheckFail"


def test_auto_increment_primary_key_comes_back_with_rt_pk(client):
    client.create_table(TableMeta("auto_pk", [("p", "STRING"), ("seq", "INTEGER", PK_AUTO_INCR)]),
                        TableOptions(), ReservedThroughput(CapacityUnit(0, 0)))
    try:
        _, first = client.put_row("auto_pk", Row([("p", "a"), ("seq", PK_AUTO_INCR)], [("v", 1)]),
                                  return_type=ReturnType.RT_PK)
        _, second = client.put_row("auto_pk", Row([("p", "a"), ("seq", PK_AUTO_INCR)], [("v", 2)]),
                                   return_type=ReturnType.RT_PK)
        assert first.primary_key[1][1] < second.primary_key[1][1]
        assert cols(client.get_row("auto_pk", second.primary_key)[1]) == {"v": 2}
    finally:
        client.delete_table("auto_pk")


def test_get_row_columns_to_get_and_filter(client, table):
    pk = [("key", "cols"), ("n", 1)]
    client.put_row(table, Row(pk, [("a", 1), ("b", 2), ("c", 3)]))
    assert cols(client.get_row(table, pk, columns_to_get=["a", "c"])[1]) == {"a": 1, "c": 3}
    assert client.get_row(table, pk, columns_to_get=["zz"])[1] is None
    hit = SingleColumnCondition("b", 2, ComparatorType.EQUAL, pass_if_missing=False)
    miss = SingleColumnCondition("b", 3, ComparatorType.EQUAL, pass_if_missing=False)
    assert client.get_row(table, pk, column_filter=hit)[1] is not None
    assert client.get_row(table, pk, column_filter=miss)[1] is None


# --- ranges --------------------------------------------------------------------------------------


def _all_pages(client, table, direction, start, end, limit, **kwargs):
    pages, rows = 0, []
    while start is not None:
        _, start, page, _ = client.get_range(table, direction, start, end, limit=limit, **kwargs)
        rows += page
        pages += 1
    return rows, pages


def test_get_range_pages_forward_and_backward(client, table):
    for key in ("a", "b"):
        for n in range(7):
            client.put_row(table, Row([("key", key), ("n", n)], [("v", n), ("key_col", key)]))
    start, end = [("key", "a"), ("n", INF_MIN)], [("key", "a"), ("n", INF_MAX)]
    rows, pages = _all_pages(client, table, Direction.FORWARD, start, end, 3)
    assert [r.primary_key[1][1] for r in rows] == list(range(7)) and pages == 3
    rows, pages = _all_pages(client, table, Direction.BACKWARD, end, start, 3)
    assert [r.primary_key[1][1] for r in rows] == list(reversed(range(7))) and pages == 3
    everything, _ = _all_pages(client, table, Direction.FORWARD, [("key", INF_MIN), ("n", INF_MIN)],
                               [("key", INF_MAX), ("n", INF_MAX)], 5)
    assert [(r.primary_key[0][1], r.primary_key[1][1]) for r in everything] == [
        (k, n) for k in ("a", "b") for n in range(7)]
    _, nxt, page, _ = client.get_range(table, Direction.FORWARD, [("key", "a"), ("n", 2)],
                                       [("key", "a"), ("n", 4)])
    assert [r.primary_key[1][1] for r in page] == [2, 3] and nxt is None


def test_get_range_with_columns_and_filter(client, table):
    for n in range(6):
        client.put_row(table, Row([("key", "f"), ("n", n)], [("v", n), ("other", "x")]))
    big = SingleColumnCondition("v", 2, ComparatorType.GREATER_THAN, pass_if_missing=False)
    rows, _ = _all_pages(client, table, Direction.FORWARD, [("key", "f"), ("n", INF_MIN)],
                         [("key", "f"), ("n", INF_MAX)], 2, columns_to_get=["v"], column_filter=big)
    assert [(r.primary_key[1][1], cols(r)) for r in rows] == [(3, {"v": 3}), (4, {"v": 4}), (5, {"v": 5})]


def test_get_range_rejects_reversed_bounds(client, table):
    err = service_error(client.get_range, table, Direction.FORWARD, [("key", INF_MAX), ("n", INF_MAX)],
                        [("key", INF_MIN), ("n", INF_MIN)])
    assert err.get_error_code() == "OTSParameterInvalid"


# --- batches -------------------------------------------------------------------------------------


def test_batch_write_row_mixes_successes_and_failures(client, table):
    exists, counter = [("key", "b"), ("n", 1)], [("key", "b"), ("n", 4)]
    client.put_row(table, Row(exists, [("v", 1)]))
    client.put_row(table, Row(counter, [("v", 1)]))
    request = BatchWriteRowRequest()
    request.add(TableInBatchWriteRowItem(table, [
        PutRowItem(Row(exists, [("v", 9)]), Condition("EXPECT_NOT_EXIST")),                  # fails
        PutRowItem(Row([("key", "b"), ("n", 2)], [("v", 2)]), Condition("EXPECT_NOT_EXIST")),  # ok
        UpdateRowItem(Row(counter, {"INCREMENT": [("v", 10)]}),
                      Condition("EXPECT_EXIST", SingleColumnCondition("v", 1, ComparatorType.EQUAL))),  # ok
        DeleteRowItem(Row([("key", "b"), ("n", 3)]), Condition("EXPECT_EXIST")),               # fails
    ]))
    response = client.batch_write_row(request)
    assert not response.is_all_succeed()
    assert [i.is_ok for i in response.get_put_by_table(table)] == [False, True]
    assert response.get_put_by_table(table)[0].error_code == "OTSConditionCheckFail"
    assert [i.is_ok for i in response.get_update_by_table(table)] == [True]
    assert [i.error_code for i in response.get_delete_by_table(table)] == ["OTSConditionCheckFail"]
    assert cols(client.get_row(table, exists)[1]) == {"v": 1}
    assert cols(client.get_row(table, counter)[1]) == {"v": 11}
    assert cols(client.get_row(table, [("key", "b"), ("n", 2)])[1]) == {"v": 2}


def test_batch_write_row_refuses_the_same_row_twice(client, table):
    request = BatchWriteRowRequest()
    pk = [("key", "dup"), ("n", 1)]
    request.add(TableInBatchWriteRowItem(table, [PutRowItem(Row(pk, [("v", 1)]), Condition("IGNORE")),
                                                 DeleteRowItem(Row(pk), Condition("IGNORE"))]))
    assert service_error(client.batch_write_row, request).get_error_code() == "OTSParameterInvalid"


def test_batch_write_row_limit_is_200_rows(client, table):
    def batch(count):
        request = BatchWriteRowRequest()
        request.add(TableInBatchWriteRowItem(table, [PutRowItem(Row([("key", "lim"), ("n", i)], [("v", i)]),
                                                                Condition("IGNORE")) for i in range(count)]))
        return request

    assert client.batch_write_row(batch(200)).is_all_succeed()
    err = service_error(client.batch_write_row, batch(201))
    assert (err.get_http_status(), err.get_error_code()) == (400, "OTSParameterInvalid")


def test_batch_get_row_across_tables(client, table):
    client.put_row(table, Row([("key", "g"), ("n", 1)], [("v", 1), ("w", 2)]))
    request = BatchGetRowRequest()
    request.add(TableInBatchGetRowItem(table, [[("key", "g"), ("n", 1)], [("key", "g"), ("n", 2)]],
                                       columns_to_get=["v"], max_version=1))
    request.add(TableInBatchGetRowItem("no_such_table", [[("key", "g"), ("n", 1)]], max_version=1))
    response = client.batch_get_row(request)
    found, absent = response.get_result_by_table(table)
    assert found.is_ok and cols(found.row) == {"v": 1}
    assert absent.is_ok and absent.row is None
    (failed,) = response.get_result_by_table("no_such_table")
    assert not failed.is_ok and failed.error_code == "OTSObjectNotExist"


# --- auth, races, restarts, faults ---------------------------------------------------------------


def test_wrong_secret_and_unknown_key_fail_authentication(cloud):
    for key_id, secret in ((KEY_ID, "wrong-secret"), ("LTAIunknownKey", KEY_SECRET)):
        bad = OTSClient(cloud.url, key_id, secret, INSTANCE, retry_policy=NoRetryPolicy())
        err = service_error(bad.list_table)
        assert (err.get_http_status(), err.get_error_code()) == (403, "OTSAuthFailed")


def test_exactly_one_of_16_racing_conditional_puts_wins(cloud, client, table):
    pk = [("key", "race"), ("n", 1)]
    barrier = threading.Barrier(16)
    outcomes: list[str] = []

    def contender(i: int) -> None:
        own = OTSClient(cloud.url, KEY_ID, KEY_SECRET, INSTANCE, retry_policy=NoRetryPolicy())
        own.list_table()                 # connect first: the race is between requests, not TCP handshakes
        barrier.wait()
        try:
            own.put_row(table, Row(pk, [("winner", i)]), Condition("EXPECT_NOT_EXIST"))
            outcomes.append("won")
        except OTSServiceError as exc:
            outcomes.append(exc.get_error_code())

    threads = [threading.Thread(target=contender, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["OTSConditionCheckFail"] * 15 + ["won"]


def test_state_file_survives_a_restart(tmp_path):
    state = tmp_path / "ots-state.json"
    with LocalCloud(SCENARIO, ots_state_file=str(state)) as first:
        c = OTSClient(first.url, KEY_ID, KEY_SECRET, INSTANCE, retry_policy=NoRetryPolicy())
        c.create_table(TableMeta("ledger", PK), TableOptions(), ReservedThroughput(CapacityUnit(0, 0)))
        c.put_row("ledger", Row([("key", "img"), ("n", 1)],
                                [("status", "SUCCESS"), ("bytes", bytearray(b"\x01"))]))
    assert state.exists()
    with LocalCloud(SCENARIO, ots_state_file=str(state)) as second:
        c = OTSClient(second.url, KEY_ID, KEY_SECRET, INSTANCE, retry_policy=NoRetryPolicy())
        assert c.list_table() == ("ledger",)
        assert cols(c.get_row("ledger", [("key", "img"), ("n", 1)])[1]) == {
            "status": "SUCCESS", "bytes": bytearray(b"\x01")}
    with LocalCloud(SCENARIO) as fresh:
        c = OTSClient(fresh.url, KEY_ID, KEY_SECRET, INSTANCE, retry_policy=NoRetryPolicy())
        assert c.list_table() == ()


def test_server_busy_is_retried_by_the_default_policy(cloud, client, table):
    pk = [("key", "busy"), ("n", 1)]
    cloud.set_faults("PutRow", throttle_rate=1.0, count=1)
    err = service_error(client.put_row, table, Row(pk, [("v", 0)]))
    assert (err.get_http_status(), err.get_error_code()) == (503, "OTSServerBusy")

    patient = OTSClient(cloud.url, KEY_ID, KEY_SECRET, INSTANCE, retry_policy=DefaultRetryPolicy())
    cloud.reset_stats()
    cloud.set_faults("PutRow", throttle_rate=1.0, count=2)
    patient.put_row(table, Row(pk, [("v", 1)]), Condition("EXPECT_NOT_EXIST"))
    assert cloud.stats()["PutRow"] == 3
    assert cols(client.get_row(table, pk)[1]) == {"v": 1}

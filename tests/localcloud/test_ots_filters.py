"""Column conditions decoded from the SDK's own encoding, evaluated against rows (pure)."""

from __future__ import annotations

import pytest
from tablestore import (
    CastType,
    ComparatorType,
    CompositeColumnCondition,
    LogicalOperator,
    RegexRule,
    SingleColumnCondition,
    SingleColumnRegexCondition,
)
from tablestore.encoder import OTSProtoBufferEncoder
from tablestore.protobuf import table_store_filter_pb2 as fpb

from localcloud.ots import filters

ENCODER = OTSProtoBufferEncoder("utf-8", enable_native=False)


def encoded(condition) -> bytes:
    msg = fpb.Filter()
    ENCODER._make_column_condition(msg, condition)
    return msg.SerializeToString()


def check(condition, row) -> bool:
    return filters.matches(filters.parse(encoded(condition)), row)


@pytest.mark.parametrize("comparator, value, expected", [
    (ComparatorType.EQUAL, 5, True), (ComparatorType.EQUAL, 6, False),
    (ComparatorType.NOT_EQUAL, 6, True), (ComparatorType.NOT_EQUAL, 5, False),
    (ComparatorType.GREATER_THAN, 4, True), (ComparatorType.GREATER_THAN, 5, False),
    (ComparatorType.GREATER_EQUAL, 5, True), (ComparatorType.GREATER_EQUAL, 6, False),
    (ComparatorType.LESS_THAN, 6, True), (ComparatorType.LESS_THAN, 5, False),
    (ComparatorType.LESS_EQUAL, 5, True), (ComparatorType.LESS_EQUAL, 4, False),
])
def test_every_comparator_on_an_integer(comparator, value, expected):
    assert check(SingleColumnCondition("n", value, comparator), {"n": 5}) is expected


def test_strings_compare_by_bytes_and_types_never_match():
    assert check(SingleColumnCondition("s", "b", ComparatorType.GREATER_THAN), {"s": "c"})
    assert not check(SingleColumnCondition("s", "5", ComparatorType.EQUAL), {"s": 5})
    assert check(SingleColumnCondition("s", "5", ComparatorType.NOT_EQUAL), {"s": 5})
    assert not check(SingleColumnCondition("s", 1, ComparatorType.EQUAL), {"s": True})


def test_pass_if_missing_decides_for_an_absent_column():
    assert check(SingleColumnCondition("gone", 1, ComparatorType.EQUAL, pass_if_missing=True), {})
    assert not check(SingleColumnCondition("gone", 1, ComparatorType.EQUAL, pass_if_missing=False), {})


def test_exist_and_not_exist():
    exist = filters.Single(fpb.CT_EXIST, "a", None, True)
    assert filters.matches(exist, {"a": 1}) and not filters.matches(exist, {})
    missing = filters.Single(fpb.CT_NOT_EXIST, "a", None, True)
    assert filters.matches(missing, {}) and not filters.matches(missing, {"a": 1})


def test_composite_and_or_not():
    both = CompositeColumnCondition(LogicalOperator.AND)
    both.add_sub_condition(SingleColumnCondition("a", 1, ComparatorType.EQUAL))
    both.add_sub_condition(SingleColumnCondition("b", "x", ComparatorType.EQUAL))
    assert check(both, {"a": 1, "b": "x"}) and not check(both, {"a": 1, "b": "y"})
    either = CompositeColumnCondition(LogicalOperator.OR)
    either.add_sub_condition(SingleColumnCondition("a", 1, ComparatorType.EQUAL))
    either.add_sub_condition(both)
    assert check(either, {"a": 1, "b": "y"}) and not check(either, {"a": 2, "b": "x"})
    negated = CompositeColumnCondition(LogicalOperator.NOT)
    negated.add_sub_condition(SingleColumnCondition("a", 1, ComparatorType.EQUAL))
    assert check(negated, {"a": 2}) and not check(negated, {"a": 1})


def test_not_with_two_subconditions_is_refused():
    bad = CompositeColumnCondition(LogicalOperator.NOT)
    bad.add_sub_condition(SingleColumnCondition("a", 1, ComparatorType.EQUAL))
    bad.add_sub_condition(SingleColumnCondition("b", 1, ComparatorType.EQUAL))
    with pytest.raises(filters.FilterError, match="exactly one"):
        filters.parse(encoded(bad))


def test_regex_rule_extracts_and_casts():
    cond = SingleColumnRegexCondition("tag", ComparatorType.GREATER_THAN, column_value=10,
                                      regex_rule=RegexRule(r"v(\d+)", CastType.VT_INTEGER))
    assert check(cond, {"tag": "v12"}) and not check(cond, {"tag": "v9"})

"""Column conditions and filters (``table_store_filter.proto``), decoded once and evaluated against a row.

The same ``Filter`` message is a write's column condition (``Condition.column_condition``) and a read's
row filter (``GetRow/GetRange/BatchGetRow.filter``). Comparing values of different types is false
(NOT_EQUAL true), as the service does not cast without a ``value_trans_rule``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Union

from tablestore.protobuf import table_store_filter_pb2 as fpb

from localcloud.ots.plainbuffer import PlainBufferError, Value, read_value, value_type


class FilterError(ValueError):
    """A filter the emulator cannot or will not evaluate (the caller answers OTSParameterInvalid)."""


@dataclass(frozen=True)
class Single:
    comparator: int
    column: str
    value: Value | None
    pass_if_missing: bool
    regex: str | None = None
    cast_type: int | None = None


@dataclass(frozen=True)
class Composite:
    combinator: int
    subs: tuple[Filter, ...]


Filter = Union[Single, Composite]


def parse(data: bytes) -> Filter:
    """Decode a serialized ``Filter`` message."""
    msg = fpb.Filter()
    try:
        msg.ParseFromString(data)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise FilterError(f"the column condition is not a valid Filter message: {exc}") from exc
    return _from_message(msg)


def _from_message(msg: fpb.Filter) -> Filter:
    if msg.type == fpb.FT_SINGLE_COLUMN_VALUE:
        single = fpb.SingleColumnValueFilter()
        single.ParseFromString(msg.filter)
        value = None
        if single.comparator not in (fpb.CT_EXIST, fpb.CT_NOT_EXIST) or single.column_value:
            try:
                value = read_value(single.column_value)
            except PlainBufferError as exc:
                raise FilterError(f"bad value in the condition on column {single.column_name!r}: {exc}"
                                  ) from exc
        regex = cast = None
        if single.HasField("value_trans_rule"):
            regex = single.value_trans_rule.regex
            rule = single.value_trans_rule
            cast = rule.cast_type if rule.HasField("cast_type") else None
            try:
                re.compile(regex)
            except re.error as exc:
                raise FilterError(f"the regex {regex!r} does not compile: {exc}") from exc
        return Single(single.comparator, single.column_name, value, not single.filter_if_missing, regex, cast)
    if msg.type == fpb.FT_COMPOSITE_COLUMN_VALUE:
        comp = fpb.CompositeColumnValueFilter()
        comp.ParseFromString(msg.filter)
        subs = tuple(_from_message(sub) for sub in comp.sub_filters)
        if comp.combinator == fpb.LO_NOT and len(subs) != 1:
            raise FilterError(f"a NOT condition takes exactly one sub-condition, got {len(subs)}")
        if comp.combinator in (fpb.LO_AND, fpb.LO_OR) and len(subs) < 2:
            raise FilterError(f"an AND/OR condition takes at least two sub-conditions, got {len(subs)}")
        return Composite(comp.combinator, subs)
    raise FilterError("only single and composite column conditions are emulated "
                      "(ColumnPaginationFilter is not); drop the pagination filter")


def _cast(value: Value, regex: str, cast_type: int | None) -> Value | None:
    """Apply a ``value_trans_rule``: the first group (or the match) of ``regex``, cast. None: no match."""
    text = value if isinstance(value, str) else None
    if text is None:
        return None
    m = re.search(regex, text)
    if m is None:
        return None
    found = m.group(1) if m.groups() else m.group(0)
    try:
        if cast_type == fpb.VT_INTEGER:
            return int(found)
        if cast_type == fpb.VT_DOUBLE:
            return float(found)
    except ValueError:
        return None
    return found


def _compare(comparator: int, have: Value, want: Value) -> bool:
    if want is None or value_type(have) != value_type(want):
        return comparator == fpb.CT_NOT_EQUAL
    if comparator == fpb.CT_EQUAL:
        return have == want
    if comparator == fpb.CT_NOT_EQUAL:
        return have != want
    if comparator == fpb.CT_GREATER_THAN:
        return have > want
    if comparator == fpb.CT_GREATER_EQUAL:
        return have >= want
    if comparator == fpb.CT_LESS_THAN:
        return have < want
    if comparator == fpb.CT_LESS_EQUAL:
        return have <= want
    raise FilterError(f"unknown comparator {comparator}")


def matches(flt: Filter, columns: Mapping[str, Value]) -> bool:
    """Does a row with these attribute (and primary-key) columns pass the filter?"""
    if isinstance(flt, Composite):
        if flt.combinator == fpb.LO_NOT:
            return not matches(flt.subs[0], columns)
        if flt.combinator == fpb.LO_AND:
            return all(matches(sub, columns) for sub in flt.subs)
        if flt.combinator == fpb.LO_OR:
            return any(matches(sub, columns) for sub in flt.subs)
        raise FilterError(f"unknown logical operator {flt.combinator}")
    present = flt.column in columns
    if flt.comparator == fpb.CT_EXIST:
        return present
    if flt.comparator == fpb.CT_NOT_EXIST:
        return not present
    if not present:
        return flt.pass_if_missing
    have = columns[flt.column]
    if flt.regex is not None:
        cast = _cast(have, flt.regex, flt.cast_type)
        if cast is None:
            return flt.pass_if_missing
        have = cast
    return _compare(flt.comparator, have, flt.value)

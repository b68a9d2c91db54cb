"""PlainBuffer codec against the SDK's own encoder and decoders (pure, no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tablestore.metadata import INF_MAX as SDK_INF_MAX
from tablestore.metadata import INF_MIN as SDK_INF_MIN
from tablestore.metadata import PK_AUTO_INCR
from tablestore.plainbuffer.plain_buffer_builder import PlainBufferBuilder
from tablestore.plainbuffer.plain_buffer_coded_stream import PlainBufferCodedInputStream
from tablestore.plainbuffer.plain_buffer_stream import PlainBufferInputStream

from localcloud.ots import plainbuffer as pbuf


def sdk_read_rows(data: bytes):
    return PlainBufferCodedInputStream(PlainBufferInputStream(data)).read_rows()


def test_reads_an_sdk_put_row_with_every_value_type():
    data = bytes(PlainBufferBuilder.serialize_for_put_row(
        [("pk", "k1"), ("n", 7)],
        [("s", "héllo"), ("i", -3), ("d", 2.5), ("b", True), ("x", bytearray(b"\x00\xff")), ("t", 1, 1700)]))
    row = pbuf.read_row(data)
    assert row.primary_key == [("pk", "k1"), ("n", 7)]
    assert [(c.name, c.value, c.timestamp) for c in row.cells] == [
        ("s", "héllo", None), ("i", -3, None), ("d", 2.5, None), ("b", True, None),
        ("x", b"\x00\xff", None), ("t", 1, 1700)]
    assert not row.delete_marker


def test_reads_update_cells_the_sdk_reader_cannot():
    data = bytes(PlainBufferBuilder.serialize_for_update_row(
        [("pk", "k")],
        {"PUT": [("a", "v")], "DELETE": [("b", None, 1234)], "DELETE_ALL": ["c"], "INCREMENT": [("n", 2)]}))
    cells = {c.name: c for c in pbuf.read_row(data).cells}
    assert (cells["a"].value, cells["a"].op) == ("v", None)
    assert (cells["b"].op, cells["b"].timestamp) == (pbuf.OP_DELETE_ONE, 1234)
    assert cells["c"].op == pbuf.OP_DELETE_ALL
    assert (cells["n"].value, cells["n"].op) == (2, pbuf.OP_INCREMENT)


def test_reads_range_bounds_auto_increment_and_delete_marker():
    bounds = pbuf.read_row(bytes(PlainBufferBuilder.serialize_primary_key(
        [("a", SDK_INF_MIN), ("b", SDK_INF_MAX)])))
    assert bounds.primary_key == [("a", pbuf.INF_MIN), ("b", pbuf.INF_MAX)]
    auto = pbuf.read_row(bytes(PlainBufferBuilder.serialize_for_put_row(
        [("a", "x"), ("b", PK_AUTO_INCR)], [])))
    assert auto.primary_key[1][1] is pbuf.AUTO_INCREMENT
    deleted = pbuf.read_row(bytes(PlainBufferBuilder.serialize_for_delete_row([("a", "x")])))
    assert deleted.delete_marker and deleted.primary_key == [("a", "x")]


def test_condition_values_have_no_length_prefix():
    for value in ("abc", 42, -1, 1.25, False, bytearray(b"\x01")):
        encoded = bytes(PlainBufferBuilder.serialize_column_value(value))
        decoded = pbuf.read_value(encoded)
        assert decoded == (bytes(value) if isinstance(value, bytearray) else value)
        assert type(decoded) is (bytes if isinstance(value, bytearray) else type(value))


def test_rejects_garbage_with_a_plainbuffer_error():
    with pytest.raises(pbuf.PlainBufferError, match="header"):
        pbuf.read_rows(b"\x00\x00\x00\x00")
    good = bytes(PlainBufferBuilder.serialize_primary_key([("a", "x")]))
    with pytest.raises(pbuf.PlainBufferError, match="truncated"):
        pbuf.read_rows(good[:-3])


def test_sdk_decodes_written_rows_and_verifies_their_checksums():
    rows = [([("pk", "ü-key"), ("n", -(2**63))], [("b", False, 1), ("d", -0.5, 2), ("s", "名前", 3)]),
            ([("pk", "z"), ("n", 2**63 - 1)], []),
            ([("pk", "y"), ("n", 0)], [("x", b"\x00\x01", 99)])]
    decoded = sdk_read_rows(pbuf.write_rows(rows))
    assert [r.primary_key for r in decoded] == [pk for pk, _ in rows]
    assert decoded[0].attribute_columns == [("b", False, 1), ("d", -0.5, 2), ("s", "名前", 3)]
    assert decoded[2].attribute_columns == [("x", bytearray(b"\x00\x01"), 99)]


def test_native_parser_decodes_written_rows():
    from tablestore import native  # the C parser the SDK prefers for GetRow/GetRange replies

    assert native.NATIVE_AVAILABLE
    data = pbuf.write_rows([([("pk", "a")], [("c", 5, 10)]), ([("pk", "b")], [("c", "x", 11)])])
    assert [list(r[0]) for r in native.parse_multiple_rows(data)] == [[("pk", "a")], [("pk", "b")]]


def test_empty_row_list_is_empty_bytes():
    assert pbuf.write_rows([]) == b""


names = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FFF), min_size=1, max_size=12)
values = st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=20), st.booleans(),
                   st.floats(allow_nan=False), st.binary(max_size=20))


@given(pk=st.lists(st.tuples(names, st.one_of(st.integers(-(2**63), 2**63 - 1), st.text(max_size=10))),
                   min_size=1, max_size=4),
       cols=st.lists(st.tuples(names, values, st.integers(0, 2**62)), max_size=6))
def test_written_rows_round_trip_through_both_readers(pk, cols):
    data = pbuf.write_row(pk, cols)
    mine = pbuf.read_row(data)
    assert mine.primary_key == pk
    assert [(c.name, c.value, c.timestamp) for c in mine.cells] == cols
    sdk = sdk_read_rows(data)[0]
    assert sdk.primary_key == pk
    want = [(n, bytearray(v) if isinstance(v, bytes) else v, ts) for n, v, ts in cols]
    assert sdk.attribute_columns == want

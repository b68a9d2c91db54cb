"""PlainBuffer, the row encoding inside Tablestore's protobuf messages (read and written by the server side).

Own reader and writer rather than the SDK's classes: the SDK reader cannot decode update cells
(DELETE / DELETE_ALL / INCREMENT), INF_MIN / INF_MAX bounds or the auto-increment placeholder, and the
SDK writer counts a non-ASCII column name in characters instead of bytes.

Layout (little-endian): a 4-byte header ``0x75``, then per row ``ROW_PK`` + cells, optional ``ROW_DATA`` +
cells, optional ``DELETE_ROW_MARKER``, ``ROW_CHECKSUM`` + 1 byte. A cell is ``CELL``, ``CELL_NAME`` (len32 +
UTF-8), optional ``CELL_VALUE`` (len32 + type byte + payload), optional ``CELL_TYPE`` (1 byte), optional
``CELL_TIMESTAMP`` (int64 ms), ``CELL_CHECKSUM`` + 1 byte. Checksums are CRC-8; the SDK verifies the ones
in replies, so the writer computes them exactly; incoming checksums are not verified.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Union

HEADER = 0x75

TAG_ROW_PK = 0x01
TAG_ROW_DATA = 0x02
TAG_CELL = 0x03
TAG_CELL_NAME = 0x04
TAG_CELL_VALUE = 0x05
TAG_CELL_TYPE = 0x06
TAG_CELL_TIMESTAMP = 0x07
TAG_DELETE_ROW_MARKER = 0x08
TAG_ROW_CHECKSUM = 0x09
TAG_CELL_CHECKSUM = 0x0A

VT_INTEGER = 0x0
VT_DOUBLE = 0x1
VT_BOOLEAN = 0x2
VT_STRING = 0x3
VT_NULL = 0x6
VT_BLOB = 0x7
VT_INF_MIN = 0x9
VT_INF_MAX = 0xA
VT_AUTO_INCREMENT = 0xB

# Cell operation types of an UpdateRow change.
OP_DELETE_ALL = 0x1
OP_DELETE_ONE = 0x3
OP_INCREMENT = 0x4


class Sentinel:
    """A primary-key placeholder that is not a value: the range bounds and the auto-increment marker."""

    def __init__(self, name: str, vtype: int):
        self.name = name
        self.vtype = vtype

    def __repr__(self) -> str:
        return self.name


INF_MIN = Sentinel("INF_MIN", VT_INF_MIN)
INF_MAX = Sentinel("INF_MAX", VT_INF_MAX)
AUTO_INCREMENT = Sentinel("AUTO_INCREMENT", VT_AUTO_INCREMENT)
_SENTINELS = {VT_INF_MIN: INF_MIN, VT_INF_MAX: INF_MAX, VT_AUTO_INCREMENT: AUTO_INCREMENT}

# A Tablestore value in Python: int (INTEGER, int64), float (DOUBLE), bool (BOOLEAN), str (STRING),
# bytes (BINARY), or a Sentinel inside primary keys.
Value = Union[int, float, bool, str, bytes, Sentinel]


class PlainBufferError(ValueError):
    """The bytes are not well-formed PlainBuffer (the caller answers OTSParameterInvalid)."""


@dataclass
class Cell:
    name: str
    value: Value | None = None
    op: int | None = None              # None (put), OP_DELETE_ALL, OP_DELETE_ONE, OP_INCREMENT
    timestamp: int | None = None


@dataclass
class RowChange:
    """One decoded row: its primary key, its attribute cells, and whether it carries a delete marker."""

    primary_key: list[tuple[str, Value]] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    delete_marker: bool = False


def value_type(value: Value) -> int:
    """The PlainBuffer type byte of a Python value (bool before int: bool is an int in Python)."""
    if isinstance(value, Sentinel):
        return value.vtype
    if isinstance(value, bool):
        return VT_BOOLEAN
    if isinstance(value, int):
        return VT_INTEGER
    if isinstance(value, float):
        return VT_DOUBLE
    if isinstance(value, str):
        return VT_STRING
    if isinstance(value, (bytes, bytearray)):
        return VT_BLOB
    raise PlainBufferError(f"unsupported value type {type(value).__name__}")


# --- reading ---------------------------------------------------------------------------------------


class _Reader:
    def __init__(self, data: bytes):
        self.data = bytes(data)
        self.pos = 0

    def at_end(self) -> bool:
        return self.pos >= len(self.data)

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise PlainBufferError(f"truncated PlainBuffer: need {n} bytes at offset {self.pos}")
        chunk = self.data[self.pos:self.pos + n]
        self.pos += n
        return chunk

    def byte(self) -> int:
        return self.take(1)[0]

    def peek(self) -> int | None:
        return None if self.at_end() else self.data[self.pos]

    def int32(self) -> int:
        return struct.unpack("<i", self.take(4))[0]

    def int64(self) -> int:
        return struct.unpack("<q", self.take(8))[0]


def _decode_payload(vtype: int, payload: bytes) -> Value:
    """A value's payload (what follows the type byte) as a Python value."""
    if vtype in _SENTINELS:
        return _SENTINELS[vtype]
    if vtype == VT_INTEGER:
        return struct.unpack("<q", payload[:8])[0]
    if vtype == VT_DOUBLE:
        return struct.unpack("<d", payload[:8])[0]
    if vtype == VT_BOOLEAN:
        return payload[:1] != b"\x00"
    if vtype in (VT_STRING, VT_BLOB):
        if len(payload) < 4:
            raise PlainBufferError("truncated string value")
        size = struct.unpack("<i", payload[:4])[0]
        raw = payload[4:4 + size]
        if len(raw) != size:
            raise PlainBufferError("truncated string value")
        if vtype == VT_BLOB:
            return bytes(raw)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            # The pure-Python SDK sends Python ``bytes`` as STRING; keep them as binary.
            return bytes(raw)
    raise PlainBufferError(f"unsupported value type 0x{vtype:02x}")


def read_value(data: bytes) -> Value:
    """A value without the 4-byte length prefix (a column condition's ``column_value``)."""
    if not data:
        raise PlainBufferError("empty value")
    return _decode_payload(data[0], bytes(data[1:]))


def _read_cell(r: _Reader) -> Cell:
    """Read one cell; the ``CELL`` tag is already consumed."""
    cell = Cell(name="")
    while True:
        tag = r.byte()
        if tag == TAG_CELL_NAME:
            cell.name = r.take(r.int32()).decode("utf-8")
        elif tag == TAG_CELL_VALUE:
            size = r.int32()
            body = r.take(size)
            if not body:
                raise PlainBufferError("empty cell value")
            cell.value = _decode_payload(body[0], body[1:])
        elif tag == TAG_CELL_TYPE:
            cell.op = r.byte()
        elif tag == TAG_CELL_TIMESTAMP:
            cell.timestamp = r.int64()
        elif tag == TAG_CELL_CHECKSUM:
            r.byte()
            return cell
        else:
            raise PlainBufferError(f"unexpected tag 0x{tag:02x} inside a cell at offset {r.pos - 1}")


def _read_row(r: _Reader) -> RowChange:
    """Read one row; positioned at its ``ROW_PK`` tag."""
    row = RowChange()
    if r.byte() != TAG_ROW_PK:
        raise PlainBufferError(f"expected ROW_PK at offset {r.pos - 1}")
    target = row.primary_key
    while True:
        tag = r.byte()
        if tag == TAG_CELL:
            cell = _read_cell(r)
            if target is row.primary_key:
                if cell.value is None:
                    raise PlainBufferError(f"primary key column {cell.name!r} has no value")
                row.primary_key.append((cell.name, cell.value))
            else:
                row.cells.append(cell)
        elif tag == TAG_ROW_DATA:
            target = row.cells
        elif tag == TAG_DELETE_ROW_MARKER:
            row.delete_marker = True
        elif tag == TAG_ROW_CHECKSUM:
            r.byte()
            return row
        else:
            raise PlainBufferError(f"unexpected tag 0x{tag:02x} in a row at offset {r.pos - 1}")


def read_rows(data: bytes) -> list[RowChange]:
    """Every row of a PlainBuffer (header once, then rows back to back)."""
    r = _Reader(data)
    if r.int32() != HEADER:
        raise PlainBufferError("bad PlainBuffer header (want 0x75)")
    rows = []
    while not r.at_end():
        rows.append(_read_row(r))
    return rows


def read_row(data: bytes) -> RowChange:
    """Exactly one row (a PutRow/UpdateRow change or a primary key)."""
    rows = read_rows(data)
    if len(rows) != 1:
        raise PlainBufferError(f"expected one row, found {len(rows)}")
    return rows[0]


# --- writing ---------------------------------------------------------------------------------------

_CRC8_TABLE = []
for _i in range(256):
    _c = _i
    for _ in range(8):
        _c = ((_c << 1) ^ 0x07) & 0xFF if _c & 0x80 else (_c << 1) & 0xFF
    _CRC8_TABLE.append(_c)


def crc8(crc: int, data: bytes) -> int:
    """CRC-8 (polynomial 0x07) as Tablestore chains it over cells and rows."""
    for b in data:
        crc = _CRC8_TABLE[(crc ^ b) & 0xFF]
    return crc


def _payload(value: Value) -> bytes:
    """Type byte + payload of a value, also the exact bytes its checksum covers."""
    vtype = value_type(value)
    if isinstance(value, Sentinel):
        return bytes([vtype])
    if vtype == VT_BOOLEAN:
        return bytes([vtype, 1 if value else 0])
    if vtype == VT_INTEGER:
        return bytes([vtype]) + struct.pack("<q", value)
    if vtype == VT_DOUBLE:
        return bytes([vtype]) + struct.pack("<d", value)
    raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    return bytes([vtype]) + struct.pack("<i", len(raw)) + raw


def write_value(value: Value) -> bytes:
    """A value without the length prefix (the column-condition form)."""
    return _payload(value)


def _write_cell(out: bytearray, name: str, value: Value, timestamp: int | None) -> int:
    raw_name = name.encode("utf-8")
    payload = _payload(value)
    out.append(TAG_CELL)
    out.append(TAG_CELL_NAME)
    out += struct.pack("<i", len(raw_name)) + raw_name
    out.append(TAG_CELL_VALUE)
    out += struct.pack("<i", len(payload)) + payload
    checksum = crc8(crc8(0, raw_name), payload)
    if timestamp is not None:
        ts = struct.pack("<q", timestamp)
        out.append(TAG_CELL_TIMESTAMP)
        out += ts
        checksum = crc8(checksum, ts)
    out.append(TAG_CELL_CHECKSUM)
    out.append(checksum)
    return checksum


def _write_row_body(out: bytearray, primary_key: list[tuple[str, Value]],
                    columns: list[tuple[str, Value, int | None]]) -> None:
    row_checksum = 0
    out.append(TAG_ROW_PK)
    for name, value in primary_key:
        row_checksum = crc8(row_checksum, bytes([_write_cell(out, name, value, None)]))
    if columns:
        out.append(TAG_ROW_DATA)
        for name, value, timestamp in columns:
            row_checksum = crc8(row_checksum, bytes([_write_cell(out, name, value, timestamp)]))
    row_checksum = crc8(row_checksum, b"\x00")      # no delete marker
    out.append(TAG_ROW_CHECKSUM)
    out.append(row_checksum)


def write_rows(rows: list[tuple[list[tuple[str, Value]], list[tuple[str, Value, int | None]]]]) -> bytes:
    """Rows as the service returns them (GetRange): one header, then the rows. Empty list -> b''."""
    if not rows:
        return b""
    out = bytearray(struct.pack("<i", HEADER))
    for primary_key, columns in rows:
        _write_row_body(out, primary_key, columns)
    return bytes(out)


def write_row(primary_key: list[tuple[str, Value]],
              columns: list[tuple[str, Value, int | None]] | None = None) -> bytes:
    """One row (GetRow, a return row, ``next_start_primary_key``)."""
    return write_rows([(primary_key, columns or [])])

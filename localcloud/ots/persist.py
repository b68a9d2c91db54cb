"""The Tablestore state file: a JSON snapshot of every instance, replaced atomically after each write.

So the demo's ledger survives an emulator restart. JSON rather than pickle: readable, and loading it
runs no code. Values carry their type (``{"i": 1}``, ``{"s": "x"}``, ``{"x": "<hex>"}``...) because
JSON alone cannot tell INTEGER from DOUBLE or STRING from BINARY.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from localcloud.ots.models import OtsBackend, PkColumn, StoredRow, Table
from localcloud.ots.plainbuffer import Value

FORMAT = 1


def _dump_value(value: Value) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"b": value}
    if isinstance(value, int):
        return {"i": value}
    if isinstance(value, float):
        return {"d": value}
    if isinstance(value, str):
        return {"s": value}
    return {"x": bytes(value).hex()}


def _load_value(data: dict[str, Any]) -> Value:
    (kind, raw), = data.items()
    if kind == "b":
        return bool(raw)
    if kind == "i":
        return int(raw)
    if kind == "d":
        return float(raw)
    if kind == "s":
        return str(raw)
    if kind == "x":
        return bytes.fromhex(raw)
    raise ValueError(f"unknown value kind {kind!r}")


def _dump_table(table: Table) -> dict[str, Any]:
    return {
        "name": table.name,
        "primary_key": [[c.name, c.type, c.auto_increment] for c in table.primary_key],
        "defined_columns": [list(d) for d in table.defined_columns],
        "time_to_live": table.time_to_live,
        "max_versions": table.max_versions,
        "deviation": table.deviation,
        "reserved": [table.reserved_read, table.reserved_write],
        "created_at": table.created_at,
        "auto_seq": table.auto_seq,
        "rows": [
            {"pk": [[n, _dump_value(v)] for n, v in row.primary_key],
             "columns": [[n, _dump_value(v), ts] for n, (v, ts) in sorted(row.columns.items())]}
            for row in (table.rows[k] for k in table.order)
        ],
    }


def _load_table(data: dict[str, Any]) -> Table:
    table = Table(
        name=data["name"],
        primary_key=[PkColumn(n, t, bool(a)) for n, t, a in data["primary_key"]],
        defined_columns=[(n, t) for n, t in data.get("defined_columns", [])],
        time_to_live=data.get("time_to_live", -1),
        max_versions=data.get("max_versions", 1),
        deviation=data.get("deviation", 86400),
        reserved_read=data.get("reserved", [0, 0])[0],
        reserved_write=data.get("reserved", [0, 0])[1],
        created_at=data.get("created_at", 0.0),
        auto_seq=data.get("auto_seq", 0),
    )
    for raw in data.get("rows", []):
        pk = [(n, _load_value(v)) for n, v in raw["pk"]]
        row = StoredRow(primary_key=pk, columns={n: (_load_value(v), int(ts)) for n, v, ts in raw["columns"]})
        table.store(OtsBackend._key(table, pk), row)
    return table


def load(path: str) -> dict[str, dict[str, Table]]:
    """Instances from the state file; an absent file is an empty emulator."""
    if not os.path.exists(path):
        return {}
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
        return {inst: {t["name"]: _load_table(t) for t in tables}
                for inst, tables in data.get("instances", {}).items()}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise RuntimeError(f"cannot read the Tablestore state file {path}: {exc}. "
                           "Delete it to start with empty tables.") from exc


def save(path: str, instances: dict[str, dict[str, Table]]) -> None:
    """Write the snapshot next to ``path`` and rename it over, so a crash never leaves half a file."""
    data = {"format": FORMAT,
            "instances": {inst: [_dump_table(t) for _n, t in sorted(tables.items())]
                          for inst, tables in sorted(instances.items())}}
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".ots-state-", suffix=".json", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, separators=(",", ":"))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise

"""Structured JSON log lines: one line per log record, searchable in the FC log store.

One formatter builds the line from the ``LogRecord`` and the fields passed with ``extra=`` (the shape of
AWS Lambda Powertools' ``logging/formatter.py``,
https://docs.powertools.aws.dev/lambda/python/latest/core/logger/): messages stay plain text, fields stay
fields, whether a module calls ``log.info("...", extra={...})`` or ``log_decision``.

API::

    JsonFormatter()                            # logging.Formatter: a LogRecord -> one JSON line
    install(logger_name="acrsync", level=INFO) # a stderr handler with JsonFormatter (FC instances)
    set_request_id(request_id) -> Token        # once per invocation (FC context.request_id)
    reset_request_id(token) -> None
    get_request_id() -> str | None
    log_decision(logger, msg="decision", level=logging.INFO, **fields) -> str | None
    redact(value) -> value                     # a copy with every secret-named key masked
    scrub_text(text) -> str                    # the same for text (e.g. raw JSON), without parsing it
    is_secret_name(name) -> bool

A line looks like ``{"ts": "...Z", "level": "INFO", "msg": "...", "request_id": "...", ...fields}``.
Secrets never reach a log: any key (at any depth) whose name suggests one (token, secret, password,
access_key*, security_token, authorization, signature, credential) is masked, and ``token=...``-style
pairs inside strings are masked too.
"""

from __future__ import annotations

import base64
import contextvars
import dataclasses
import datetime as _dt
import enum
import functools
import json
import logging
import re
import sys
from collections.abc import Mapping
from typing import Any

from acrsync import codec

MASK = "***"

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("acrsync_request_id", default=None)

# Normalised names (lower case, '-' and ' ' turned into '_') that hold a secret when they contain one of
# these. "token" is broad on purpose: a masked pagination token costs nothing, a logged webhook token does.
_SECRET_PARTS = ("token", "secret", "password", "passwd", "authorization", "signature", "credential",
                 "access_key", "accesskey", "private_key", "api_key", "apikey")
# Any text a secret could hide in mentions one of these words (as a key or a ``name=`` pair): text that
# does not is returned as is, without the costlier masking passes (most log values).
_SECRET_WORDS = re.compile(r"(?i)token|secret|passw|signature|credential|authorization|access_?key|"
                           r"private_key|api_?key")
_SECRET_PAIR = re.compile(
    r"(?i)\b([\w-]*(?:token|secret|password|passwd|signature|access_?key[\w-]*)=)[^&\s\"']+")


def set_request_id(request_id: str | None) -> contextvars.Token[str | None]:
    """Tag every following line of this invocation (and its threads started with copy_context)."""
    return _request_id.set(request_id)


def reset_request_id(token: contextvars.Token[str | None]) -> None:
    _request_id.reset(token)


def get_request_id() -> str | None:
    return _request_id.get()


@functools.lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """True when a field called ``name`` may carry a secret (so its value must never be logged)."""
    norm = re.sub(r"[-\s.]+", "_", str(name).strip().lower())
    return any(part in norm for part in _SECRET_PARTS)


_JSON_PAIR = re.compile(r'"((?:[^"\\]|\\.)*)"(\s*:\s*)"((?:[^"\\]|\\.)*)"')


def _mask_json_pair(m: re.Match[str]) -> str:
    if is_secret_name(m.group(1)):
        return f'"{m.group(1)}"{m.group(2)}"{MASK}"'
    return m.group(0)


def scrub_text(text: str) -> str:
    """``text`` with secret values masked: ``token=...`` pairs and ``"token": "..."`` JSON members.

    Works on JSON text without parsing it, so a payload can be kept whole (any depth) minus its secrets.
    """
    if not _SECRET_WORDS.search(text):
        return text
    if "=" in text:
        text = _SECRET_PAIR.sub(lambda m: m.group(1) + MASK, text)
    if ":" in text:
        text = _JSON_PAIR.sub(_mask_json_pair, text)
    return text


def redact(value: Any, _depth: int = 0) -> Any:
    """A JSON-friendly copy of ``value`` with secret-named keys masked, at any depth."""
    if _depth > 50:
        return "<nested too deep>"
    if isinstance(value, Mapping):
        return {str(k): (MASK if is_secret_name(str(k)) else redact(v, _depth + 1)) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact(v, _depth + 1) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):   # acrsync's domain types
        return redact(codec.dump(value), _depth + 1)
    if hasattr(value, "model_dump"):                      # pydantic models
        return redact(value.model_dump(mode="json"), _depth + 1)
    if isinstance(value, enum.Enum):
        return redact(value.value, _depth + 1)
    if isinstance(value, (bytes, bytearray)):
        try:
            return scrub_text(bytes(value).decode("utf-8"))
        except UnicodeDecodeError:
            return "base64:" + base64.b64encode(bytes(value)).decode("ascii")
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return scrub_text(str(value))


def _level_name(level: int | str) -> tuple[int, str]:
    if isinstance(level, str):
        num = logging.getLevelName(level.upper())
        return (num if isinstance(num, int) else logging.INFO), level.upper()
    return level, logging.getLevelName(level)


# Attributes every LogRecord has (https://docs.python.org/3/library/logging.html#logrecord-attributes):
# whatever else a record carries came from ``extra=`` and is a field of the line.
_RECORD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
_LINE_KEYS = ("ts", "level", "msg", "request_id")


def _field_name(key: str) -> str:
    """A field that would overwrite a line key or a LogRecord attribute is kept as ``field_<key>``."""
    return f"field_{key}" if key in _LINE_KEYS or key in _RECORD_ATTRS else key


class JsonFormatter(logging.Formatter):
    """One JSON line per record: ts, level, msg, request_id, then the record's ``extra`` fields, with
    every secret masked; an exception goes under ``exception`` (its text scrubbed)."""

    def format(self, record: logging.LogRecord) -> str:
        ts = _dt.datetime.fromtimestamp(record.created, _dt.timezone.utc)
        line: dict[str, Any] = {
            "ts": ts.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "msg": scrub_text(record.getMessage()),
        }
        rid = getattr(record, "request_id", None) or _request_id.get()
        if rid:
            line["request_id"] = rid
        for key, value in vars(record).items():
            if key in _RECORD_ATTRS or key == "request_id":
                continue
            out = key if key not in line else f"field_{key}"
            line[out] = MASK if is_secret_name(key) else redact(value)
        if record.exc_info:
            line["exception"] = scrub_text(self.formatException(record.exc_info))
        return json.dumps(line, ensure_ascii=False, default=str, allow_nan=True)


def install(logger_name: str = "acrsync", level: int = logging.INFO) -> logging.Logger:
    """Send ``logger_name``'s records to stderr as JSON lines, once (idempotent); FC keeps stderr.

    The logger stops propagating, so a runtime's own root handler does not print each line twice.
    """
    logger = logging.getLogger(logger_name)
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return logger


_FORMATTER = JsonFormatter()


def log_decision(logger: logging.Logger, msg: str = "decision", level: int | str = logging.INFO,
                 **fields: Any) -> str | None:
    """Log one decision with its facts as fields; return its JSON line (None when the level is off).

    ``fields`` are the decision's facts (event_id, target, image, outcome, reason...). Field names
    ``ts``, ``level``, ``msg``, ``request_id`` and LogRecord attributes (``name``, ``module``...) are
    kept under ``field_<name>``.
    """
    num, _ = _level_name(level)
    if not logger.isEnabledFor(num):
        return None
    extra = {_field_name(k): v for k, v in fields.items()}
    rid = _request_id.get()
    if rid:
        extra["request_id"] = rid   # stamped now: a handler may format the record later
    record = logger.makeRecord(logger.name, num, "(decision)", 0, msg, (), None, extra=extra)
    logger.handle(record)
    return _FORMATTER.format(record)

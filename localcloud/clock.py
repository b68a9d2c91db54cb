"""The emulator's clock: tests move time by hand, the demo runs on wall time.

Everything time-dependent in localcloud (STS expiry, sync task progress, RAM dates) reads this clock, so a
test can jump an hour ahead in a microsecond instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from datetime import datetime, timezone

MODES = ("manual", "wall")


class Clock:
    """``manual``: starts at ``start`` (default: real time now) and moves only by ``advance()``.
    ``wall``: real time plus every advance so far (so the demo can still skip ahead); ``start`` is ignored."""

    def __init__(self, mode: str = "manual", start: float | None = None):
        if mode not in MODES:
            raise ValueError(f"clock mode {mode!r} is not one of {', '.join(MODES)}")
        self.mode = mode
        self._lock = threading.Lock()
        self._offset = 0.0
        # Only a manual clock starts at ``start``: a wall clock must agree with clients that judge expiry by
        # real time (alibabacloud_credentials drops STS credentials whose Expiration is in the real past).
        self._manual = float(start) if mode == "manual" and start is not None else time.time()

    def now(self) -> float:
        with self._lock:
            if self.mode == "manual":
                return self._manual
            return time.time() + self._offset

    def advance(self, seconds: float) -> float:
        """Move the clock forward; returns the new time. Time never goes backwards."""
        if seconds < 0:
            raise ValueError(f"cannot advance the clock by a negative amount ({seconds} s)")
        with self._lock:
            if self.mode == "manual":
                self._manual += seconds
            else:
                self._offset += seconds
        return self.now()


def iso(ts: float) -> str:
    """Seconds since the epoch -> ``YYYY-MM-DDThh:mm:ssZ`` (RAM and STS date format)."""
    return datetime.fromtimestamp(ts, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> float:
    """``YYYY-MM-DDThh:mm:ssZ`` (or any ISO 8601 with offset) -> seconds since the epoch."""
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()

"""The CLI's surroundings for its tests: where the installed command and the example config are, the user's
environment stripped of this machine's settings, and what one run of the command gave (the fixtures that use
these are in tests/cli/conftest.py)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ACRSYNC = Path(sys.executable).parent / "acrsync"
EXAMPLE = ROOT / "examples" / "localcloud.acrsync.yaml"


@dataclass
class Done:
    code: int
    out: str
    err: str
    seconds: float

    @property
    def both(self) -> str:
        return self.out + self.err


def base_env(home: Path) -> dict[str, str]:
    """The user's environment, minus anything of this machine's that would change the answers."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ALIBABA_CLOUD_", "ACRSYNC_", "FC_", "PYTEST")) and k != "COLUMNS"}
    env.update({"HOME": str(home), "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true", "COLUMNS": "120"})
    return env


def sqlite_config(tmp_path: Path, db: Path | None = None) -> Path:
    """The demo config with a SQLite ledger in ``tmp_path`` (no cloud needed to read it)."""
    doc = yaml.safe_load(EXAMPLE.read_text())
    doc["ledger"] = {"backend": "sqlite", "path": str(db or tmp_path / "ledger.db")}
    path = tmp_path / "sqlite.acrsync.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path

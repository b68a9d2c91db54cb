"""What a cold on_push instance imports (docs/BENCHMARKS.md, "Cold start"): ``index`` loads the push path
only, and neither pydantic nor PyYAML: the domain types are stdlib dataclasses, and the packaged config is
read from its validated form (``make package`` writes it beside the file). The grant check, its fixes and
apply, the policy analyser, reconcile, the CLI and the other functions' modules load when something uses
them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import acrsync
import acrsync.grants
from acrsync.config import parse_config, write_validated
from acrsync.demo import config_doc

ROOT = Path(acrsync.__file__).resolve().parents[2]

# Modules a later cold instance (it reads the shared grant verdict) never needs, and that cost it imports.
NOT_ON_THE_PUSH_PATH = [
    "acrsync.grants.apply", "acrsync.grants.fixes", "acrsync.grants.check", "acrsync.policy",
    "acrsync.reconcile", "acrsync.cli", "acrsync.compliance", "acrsync.backfill", "acrsync.demo",
    "acrsync.packaging", "acrsync.rule_advisor", "acrsync.drift",
    "typer", "rich", "pygments", "jinja2", "click", "pydantic", "pydantic_core", "yaml",
]

PROBE = r"""
import importlib, json, sys
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import index
from acrsync.config import load_config
config = load_config(sys.argv[3])
print(json.dumps({"modules": sorted(sys.modules), "targets": [t.name for t in config.targets],
                  "acrsync": importlib.import_module("acrsync").__file__}))
"""


@pytest.fixture(scope="module")
def packaged_config(tmp_path_factory) -> Path:
    """A config file with its validated form beside it, as ``make package`` leaves them."""
    path = tmp_path_factory.mktemp("code") / "acrsync.yaml"
    path.write_text(yaml.safe_dump(config_doc()), encoding="utf-8")
    write_validated(parse_config(config_doc()), path)
    return path


@pytest.fixture(scope="module")
def cold(packaged_config) -> dict:
    """A fresh isolated interpreter (no PYTHON* variables, no script directory) importing on_push's index
    and loading the packaged config."""
    proc = subprocess.run([sys.executable, "-I", "-c", PROBE, str(ROOT / "functions" / "on_push"),
                           str(ROOT / "shared"), str(packaged_config)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_probe_imports_this_checkout(cold):
    assert Path(cold["acrsync"]).resolve() == Path(acrsync.__file__).resolve()
    assert {"acrsync.app", "acrsync.push", "acrsync.events", "acrsync.grants.cache"} <= set(cold["modules"])
    assert cold["targets"] == [t["name"] for t in config_doc()["targets"]]


@pytest.mark.parametrize("name", NOT_ON_THE_PUSH_PATH)
def test_importing_on_push_leaves_out(cold, name):
    loaded = [m for m in cold["modules"] if m == name or m.startswith(name + ".")]
    assert loaded == [], f"importing functions/on_push/index.py and loading its config loads {loaded}"


def test_the_grants_package_surface_resolves_lazily_to_its_modules():
    from acrsync.grants import apply, cache, check, findings, fixes

    homes = {"apply": apply, "cache": cache, "check": check, "findings": findings}
    for name in acrsync.grants.__all__:
        value = getattr(acrsync.grants, name)
        if name == "fixes":
            assert value is fixes
        else:
            assert any(getattr(m, name, None) is value for m in homes.values()), name
    assert set(acrsync.grants.__all__) <= set(dir(acrsync.grants))
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = acrsync.grants.no_such_name

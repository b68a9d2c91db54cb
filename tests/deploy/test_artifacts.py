"""The artifacts `make package` writes, as FC runs them: each zip unpacked into an empty directory, each
handler run in a clean ``python3.10 -I`` with only its code package and the layer on the import path, on
every sample event its triggers deliver, against localcloud (the Tablestore ledger included). Nothing may load
from outside the package, the layer and the standard library; no CLI module, no numpy."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import yaml

from acrsync import packaging
from acrsync.demo import config_doc
from bench import ACCOUNT_A, ProcessCloud
from bench.cold_start import (
    function_env,
    init_ledger,
    one_target_config,
    role_credentials,
    run_handler,
    unpack,
)
from tests.deploy.deploy_world import FUNCTIONS, REPO_ROOT

pytestmark = pytest.mark.slow

EVENTS = REPO_ROOT / "events"
# Which sample events reach which function (s.yaml's triggers): timers carry their mode.
TIMER_EVENTS = {"reconcile": "timer_reconcile.json", "compliance": "timer_compliance.json"}
NEVER_IN_A_FUNCTION = ("acrsync.cli", "typer", "rich", "pygments", "click", "numpy", "localcloud", "pytest")
# The pip output is cached here (ignored by git) while the pins are unchanged.
BUILD_CACHE = REPO_ROOT / ".tools" / "package-test"


def events_for(function: str) -> list[str]:
    names = sorted(p.name for p in EVENTS.glob("*.json"))
    if function == "on_push":
        return [n for n in names if not n.startswith("timer_")]
    return [TIMER_EVENTS[function]]


def test_every_sample_event_reaches_a_function():
    names = {p.name for p in EVENTS.glob("*.json")}
    routed = {n for f in FUNCTIONS for n in events_for(f)}
    assert names <= routed, names - routed


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    config = tmp_path_factory.mktemp("config") / "acrsync.yaml"
    config.write_text(yaml.safe_dump(one_target_config(config_doc())), encoding="utf-8")
    return packaging.build(BUILD_CACHE, config=config, region="cn-hangzhou")


@pytest.fixture(scope="module")
def unpacked(built, tmp_path_factory) -> dict[str, Path]:
    """Each artifact unzipped into its own empty directory; the layer as FC mounts it (/opt/python)."""
    root = tmp_path_factory.mktemp("fc")
    out = {a.name: unpack(a.zip_path, root / a.name) for a in built.functions}
    out["layer"] = unpack(built.layer.zip_path, root / "opt") / "python"
    return out


@pytest.fixture(scope="module")
def cloud():
    process = ProcessCloud()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def credentials(cloud, unpacked):
    creds = role_credentials(cloud.url, ACCOUNT_A)
    init_ledger(cloud.url, unpacked["on_push"] / "acrsync.yaml")
    return creds


def test_the_artifacts_are_what_s_yaml_deploys(built, raw):
    assert [a.name for a in built.functions] == sorted(FUNCTIONS)
    assert built.layer_name == raw["vars"]["layerName"]
    for artifact in built.functions:
        names = zipfile.ZipFile(artifact.zip_path).namelist()
        assert "index.py" in names and "acrsync.yaml" in names and "acrsync/__init__.py" in names
        assert not [n for n in names if n.startswith(("acrsync/cli/", "acrsync/demo", "acrsync/packaging"))]
        assert artifact.zip_bytes < 2 * 1024 * 1024
    layer = zipfile.ZipFile(built.layer.zip_path).namelist()
    assert all(n.startswith("python/") for n in layer)
    tops = {n.split("/")[1] for n in layer}
    assert not tops & {"numpy", "numpy.libs", "typer", "rich", "pygments", "bin", "acrsync", "localcloud"}
    assert not [n for n in layer if "/tests/" in n or n.endswith((".dylib", "-darwin.so"))]
    assert "python/tablestore/ots_sdk/ots_sdk.so" not in layer
    assert built.layer.unpacked_bytes < 80 * 1024 * 1024


CASES = [(f, e) for f in FUNCTIONS for e in events_for(f)]


@pytest.fixture(scope="module")
def runs(unpacked, cloud, credentials):
    """Every handler on every sample event its triggers deliver, each in its own fresh interpreter."""
    python = packaging.runtime_python()
    out = {}
    for function, event in CASES:
        code = unpacked[function]
        out[function, event] = run_handler(
            python, code, unpacked["layer"], (EVENTS / event).read_bytes(), env=function_env(cloud.url, code),
            credentials=credentials, function=f"acrsync-{function.replace('_', '-')}", region="cn-hangzhou",
            account_id=ACCOUNT_A)
    return out


@pytest.mark.parametrize("function,event", CASES)
def test_each_handler_runs_from_its_artifact_alone(unpacked, runs, function, event):
    run = runs[function, event]
    assert run.ok, f"{function} on {event}: {run.error}\n{run.stderr[-4000:]}"
    assert run.outside(unpacked[function], unpacked["layer"]) == {}, \
        "loaded from outside the package, the layer and the stdlib"
    loaded = [m for m in run.modules if m.split(".")[0] in NEVER_IN_A_FUNCTION or m.startswith("acrsync.cli")]
    assert loaded == []
    if function == "on_push":       # the push path runs on the stdlib and the SDKs (docs/BENCHMARKS.md)
        assert [m for m in run.modules if m.split(".")[0] in ("pydantic", "pydantic_core", "yaml")] == []
    assert "Native C++" not in run.stderr           # tablestore's fallback warning is silenced
    # the cold build ran with the collector paused, and what it built is frozen out of later collections
    assert run.gc["enabled"] is True and run.gc["frozen"] > 20_000, run.gc
    if event == "webhook_http.json":
        assert json.loads(json.dumps(run.reply))["statusCode"] != 401, run.reply


def test_the_layer_holds_only_what_the_functions_import(unpacked, runs):
    # Every top-level name in the layer was loaded by some handler, or is listed with its reason in
    # packaging.KEPT_UNLOADED.
    layer = unpacked["layer"].resolve()
    loaded = {Path(path).resolve().relative_to(layer).parts[0].split(".")[0]
              for run in runs.values() for path in run.modules.values()
              if path and str(Path(path).resolve()).startswith(str(layer) + "/")}
    tops = {p.name.split(".")[0] for p in layer.iterdir() if not p.name.endswith(".dist-info")
            and p.name != "__pycache__"}
    unused = tops - loaded - set(packaging.KEPT_UNLOADED)
    assert unused == set(), f"in the layer but imported by no function: {sorted(unused)}"

"""The CLI as a user meets it: the installed ``acrsync`` command in its own process, its stdout, stderr and
exit code, against a localcloud process (scenarios/demo.yaml: every account and key there is made up).

- ``acrsync(*args, env=..., cwd=..., timeout=...)``: run the command; returns a ``Done`` (code, out, err).
- ``cloud``: one localcloud process per test module (``LocalCloudProcess``), stopped at the module's end.
- ``cli_env``: the CLI's keys (the RAM user acrsync-cli of account A) and ACRSYNC_ENDPOINT.
- ``demo_config``: examples/localcloud.acrsync.yaml copied into a temporary directory.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from tests.cli.cli_world import ACRSYNC, EXAMPLE, Done, base_env
from tests.demo_world import CLI_KEY_ID, CLI_SECRET


@pytest.fixture
def acrsync(tmp_path):
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)

    def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None, timeout: float = 120,
            stdin: str | None = None) -> Done:
        full = base_env(home)
        for k, v in (env or {}).items():
            if v is None:
                full.pop(k, None)
            else:
                full[k] = v
        started = time.monotonic()
        done = subprocess.run([str(ACRSYNC), *args], env=full, cwd=cwd or tmp_path, capture_output=True,
                              text=True, timeout=timeout, input=stdin)
        return Done(done.returncode, done.stdout, done.stderr, time.monotonic() - started)

    run.home = home
    return run


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    from acrsync.demo import SCENARIO, LocalCloudProcess

    doc = yaml.safe_load(SCENARIO.read_text())
    config = tmp_path_factory.mktemp("fn") / "acrsync.yaml"
    shutil.copy(EXAMPLE, config)
    for fn in doc.get("functions", []):
        fn.setdefault("environment", {})["ACRSYNC_CONFIG"] = str(config)
    scenario = tmp_path_factory.mktemp("scenario") / "demo.yaml"
    scenario.write_text(yaml.safe_dump(doc, sort_keys=False))
    proc = LocalCloudProcess(scenario)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def cli_env(cloud) -> dict[str, str]:
    """The CLI's keys (the RAM user acrsync-cli of account A) and the endpoint of this module's localcloud."""
    return {"ALIBABA_CLOUD_ACCESS_KEY_ID": CLI_KEY_ID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": CLI_SECRET,
            "ACRSYNC_ENDPOINT": cloud.url}


@pytest.fixture
def demo_config(tmp_path) -> Path:
    path = tmp_path / "acrsync.yaml"
    shutil.copy(EXAMPLE, path)
    return path

"""Fixtures for the deployment tests: the repository root, s.yaml (raw and rendered), the vendored fc3 props
schema, and the real Serverless Devs CLI installed into a project-local prefix with a throwaway home."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.deploy_world import (
    ACCESS,
    DEPLOY_ENV,
    FC3_SCHEMA,
    REPO_ROOT,
    S_CLI_PREFIX,
    S_CLI_SPEC,
    S_VERSION,
    S_YAML,
)
from tests.deploy.s_render import load_raw, render


@pytest.fixture(scope="session")
def raw() -> dict[str, Any]:
    return load_raw(S_YAML)


@pytest.fixture(scope="session")
def rendered(raw: dict[str, Any]) -> dict[str, Any]:
    return render(raw, DEPLOY_ENV, ACCESS)


@pytest.fixture(scope="session")
def fc3_schema() -> dict[str, Any]:
    return json.loads(FC3_SCHEMA.read_text(encoding="utf-8"))


# ------------------------------------------------------------------ the real `s`


def install_s_cli(prefix: Path = S_CLI_PREFIX) -> tuple[Path, float]:
    """``npm ci`` the pinned CLI into ``prefix`` (only the npm registry is contacted; HOME is a scratch
    directory so no user npm or s configuration is read or written). Returns the binary and the seconds the
    install took (0 when reused)."""
    binary = prefix / "node_modules" / ".bin" / "s"
    lock = (S_CLI_SPEC / "package-lock.json").read_bytes()
    if binary.is_file() and (prefix / "package-lock.json").is_file() \
            and (prefix / "package-lock.json").read_bytes() == lock:
        return binary, 0.0
    npm = shutil.which("npm")
    if npm is None:
        pytest.fail("npm is needed to install the pinned Serverless Devs CLI (Node.js >= 14.14); install "
                    "Node.js, or run the tests where it is available")
    if prefix.exists():
        shutil.rmtree(prefix)
    prefix.mkdir(parents=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copy2(S_CLI_SPEC / name, prefix / name)
    home = prefix / "home"
    home.mkdir()
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home),
           "npm_config_cache": str(prefix / "npm-cache"),
           "npm_config_update_notifier": "false", "npm_config_fund": "false", "npm_config_audit": "false"}
    started = time.monotonic()
    result = subprocess.run([npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=prefix, env=env,
                            capture_output=True, text=True, timeout=600, check=False)
    took = time.monotonic() - started
    if result.returncode != 0 or not binary.is_file():
        pytest.fail(f"npm ci of @serverless-devs/s {S_VERSION} failed (exit {result.returncode}); it "
                    f"needs the npm registry:\n{result.stderr[-2000:]}")
    return binary, took


class SCli:
    """The real `s` with a throwaway s home (serverless_devs_config_home) holding a made-up alias and a stub
    fc3 component whose schema is the vendored one."""

    def __init__(self, binary: Path, home: Path):
        self.binary = binary
        self.home = home
        self.component = home / ".s" / "components" / "devsapp.cn" / "v3" / "fc3"

    def calls(self) -> list[dict]:
        """What the stub fc3 was asked to do, in order (and forget it)."""
        log = self.component / "calls.jsonl"
        if not log.is_file():
            return []
        lines = log.read_text(encoding="utf-8").splitlines()
        log.unlink()
        return [json.loads(line) for line in lines]

    def env(self, extra: dict[str, str]) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", ""), "HOME": str(self.home), "serverless_devs_config_home":
                str(self.home), "CI": "true", "serverless_devs_log_level": "ERROR", **extra}

    def run(self, *args: str, env: dict[str, str] | None = None, cwd: Path = REPO_ROOT,
            ) -> subprocess.CompletedProcess:
        return subprocess.run([str(self.binary), *args, "--silent"], cwd=cwd, env=self.env(env or {}),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180,
                              check=False)


STUB_INDEX = """\
// A stand-in for the fc3 component: getSchema() answers with the real fc3 schema (vendored); deploy and
// layer only record what s hands them (one JSON line each in calls.jsonl), so tests can see the order.
const fs = require('fs');
const path = require('path');
const record = (what, inputs) => fs.appendFileSync(path.join(__dirname, 'calls.jsonl'),
  JSON.stringify({what, args: inputs.args, props: inputs.props}) + '\\n');
module.exports = class Fc3Stub {
  getSchema() { return fs.readFileSync(path.join(__dirname, 'schema.json'), 'utf8'); }
  async layer(inputs) { record('layer', inputs); return {stub: 'layer'}; }
  async deploy(inputs) { record('deploy', inputs); return {stub: 'deploy'}; }
};
"""


def seed_stub_fc3(s_home: Path) -> Path:
    """The component cache layout s 3.x loads without the network when a .s.lock is present."""
    comp = s_home / ".s" / "components" / "devsapp.cn" / "v3" / "fc3"
    comp.mkdir(parents=True, exist_ok=True)
    (comp / ".s.lock").write_text(json.dumps({"version": "0.0.0-stub", "lastUpdateCheck": 9999999999999}))
    (comp / "package.json").write_text(json.dumps({"name": "fc3-stub", "version": "0.0.0",
                                                   "main": "index.js"}))
    (comp / "publish.yaml").write_text("Edition: 3.0.0\nType: Component\nName: fc3\nVersion: 0.0.0\n"
                                       "Schema: schema.json\n")
    shutil.copy2(FC3_SCHEMA, comp / "schema.json")
    (comp / "index.js").write_text(STUB_INDEX)
    return comp


@pytest.fixture(scope="session")
def s_cli(tmp_path_factory) -> SCli:
    binary, took = install_s_cli()
    if took:
        print(f"\n@serverless-devs/s {S_VERSION} installed in {took:.1f} s")
    home = tmp_path_factory.mktemp("s-home")
    cli = SCli(binary, home)
    added = cli.run("config", "add", "--AccessKeyID", "made-up-id", "--AccessKeySecret", "made-up-secret",
                    "--AccountID", ACCESS["AccountID"], "-a", "default", "-f")
    assert added.returncode == 0, added.stdout + added.stderr
    seed_stub_fc3(home)
    return cli

"""s.yaml through the real Serverless Devs CLI (pinned, installed by the test setup): `s preview` renders it
exactly as the project's renderer does, and `s verify` validates it against the real fc3 props schema
(through a stub fc3 component in a throwaway s home: the component registry is not needed)."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.deploy.deploy_world import ACCESS, DEPLOY_ENV, FUNCTIONS, S_VERSION, S_YAML
from tests.deploy.s_render import RenderError, load_raw, render

pytestmark = pytest.mark.slow


def _json(text: str) -> dict:
    """s prints its JSON after any log lines; take the document."""
    start = text.find("{")
    assert start >= 0, text
    return json.loads(text[start:])


def _preview(s_cli, env: dict[str, str], template: Path = S_YAML):
    return s_cli.run("preview", "-o", "json", "-t", str(template), env=env)


def test_the_pinned_version_runs(s_cli):
    result = s_cli.run("-v")
    assert result.returncode == 0, result.stderr
    assert f"@serverless-devs/s: {S_VERSION}" in result.stdout
    assert str(s_cli.home) in result.stdout    # the throwaway s home, never the user's


@pytest.mark.parametrize("env", [
    DEPLOY_ENV,
    {**DEPLOY_ENV, "ACRSYNC_REGION": "cn-beijing", "ACRSYNC_OTS_INSTANCE": "ledger1",
     "ACRSYNC_OTS_DOMAIN": "vpc.tablestore.aliyuncs.com", "ACRSYNC_LAYER_VERSION": "3"},
    # X= counts as unset: the defaults apply
    {**DEPLOY_ENV, "ACRSYNC_REGION": "", "ACRSYNC_FUNCTION_ROLE": "", "ACRSYNC_LOG_STORE": ""},
], ids=["defaults", "overridden", "empty-is-unset"])
def test_preview_matches_the_project_renderer(s_cli, raw, env):
    result = _preview(s_cli, env)
    assert result.returncode == 0, result.stdout + result.stderr
    assert _json(result.stdout) == render(raw, env, ACCESS)


def test_empty_variables_fall_back_to_defaults(s_cli):
    doc = _json(_preview(s_cli, {**DEPLOY_ENV, "ACRSYNC_REGION": ""}).stdout)
    assert {doc["resources"][n]["props"]["region"] for n in FUNCTIONS} == {"cn-hangzhou"}


@pytest.mark.parametrize("missing", sorted(DEPLOY_ENV))
def test_a_required_variable_unset_or_empty_fails_in_both(s_cli, raw, missing):
    for env in ({k: v for k, v in DEPLOY_ENV.items() if k != missing}, {**DEPLOY_ENV, missing: ""}):
        result = _preview(s_cli, env)
        assert result.returncode != 0
        assert f"env('{missing}') not found" in result.stdout + result.stderr
        with pytest.raises(RenderError, match=missing):
            render(raw, env, ACCESS)


def test_preview_never_prints_the_webhook_token(s_cli):
    # Even with the token itself exported, only its digest reaches the rendered file.
    token = "made-up-webhook-token-0123456789"
    result = _preview(s_cli, {**DEPLOY_ENV, "ACRSYNC_WEBHOOK_TOKEN": token})
    assert result.returncode == 0, result.stderr
    assert token not in result.stdout + result.stderr
    env = _json(result.stdout)["resources"]["on_push"]["props"]["environmentVariables"]
    assert env["ACRSYNC_WEBHOOK_TOKEN"] == "sha256:" + DEPLOY_ENV["ACRSYNC_WEBHOOK_TOKEN_SHA256"]


def test_the_account_id_renders_from_the_alias(s_cli):
    doc = _json(_preview(s_cli, DEPLOY_ENV).stdout)
    (layer,) = doc["resources"]["on_push"]["props"]["layers"]
    assert layer.startswith(f"acs:fc:cn-hangzhou:{ACCESS['AccountID']}:layers/acrsync-deps-py310-")
    assert "${" not in json.dumps(doc)


# ------------------------------------------------------------------ s verify (stub fc3, real schema)


def test_verify_passes(s_cli):
    result = s_cli.run("verify", "-t", str(S_YAML), env=DEPLOY_ENV)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "verification" in result.stdout.lower() and "passed" in result.stdout.lower(), result.stdout


def test_verify_refuses_props_the_schema_refuses(s_cli, tmp_path):
    broken = S_YAML.read_text(encoding="utf-8")
    broken = broken.replace("runtime: python3.10", "runtime: python3.99", 1)
    broken = re.sub(r"memorySize: 512", "memorySize: 100", broken, count=1)
    template = tmp_path / "s.yaml"
    template.write_text(broken, encoding="utf-8")
    shutil.copytree(S_YAML.parent / "functions", tmp_path / "functions")
    load_raw(template)    # still valid YAML: the refusal is the schema's
    result = s_cli.run("verify", "-t", str(template), env=DEPLOY_ENV)
    assert result.returncode != 0
    out = result.stdout + result.stderr
    assert "on_push/props/runtime" in out and "on_push/props/memorySize" in out, out


# ------------------------------------------------------------------ s deploy (stub fc3): the order of things


RECORDING_MAKEFILE = """\
package:
\t@echo "package REGION=$(REGION) LAYER=$(LAYER)" >> make.log
"""


def test_deploy_builds_then_publishes_the_layer_then_each_function(s_cli, tmp_path):
    # The real s.yaml in a scratch project whose `make package` only records its arguments.
    shutil.copy2(S_YAML, tmp_path / "s.yaml")
    (tmp_path / "Makefile").write_text(RECORDING_MAKEFILE, encoding="utf-8")
    s_cli.calls()
    result = s_cli.run("deploy", "-y", env=DEPLOY_ENV, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    layer_name = load_raw(S_YAML)["vars"]["layerName"]
    assert (tmp_path / "make.log").read_text().splitlines() == [f"package REGION=cn-hangzhou "
                                                                f"LAYER={layer_name}"]
    calls = s_cli.calls()
    assert [(c["what"], c["props"]["functionName"]) for c in calls] == [
        (what, f"acrsync-{name.replace('_', '-')}") for name in ("on_push", "reconcile", "compliance")
        for what in ("layer", "deploy")]
    for call in calls:
        if call["what"] == "layer":
            assert call["args"] == ["publish", "--layer-name", layer_name, "--code", "./build/fc/layer.zip",
                                    "--compatible-runtime", "python3.10"]
        else:
            assert call["props"]["layers"] == [
                f"acs:fc:cn-hangzhou:{ACCESS['AccountID']}:layers/{layer_name}/versions/1"]
            assert call["props"]["code"].endswith(".zip")

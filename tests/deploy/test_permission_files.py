"""`acrsync permissions --out-dir`: one valid RAM policy document per principal (and the function role's
trust policy), judged by localcloud's RAM policy rules, covering what s.yaml deploys and runs."""

from __future__ import annotations

import json

import pytest
import yaml
from typer.testing import CliRunner

from acrsync.cli import app
from acrsync.cloud.permissions import Principal
from localcloud.fc.models import FC_SERVICE
from localcloud.policy import is_allowed, load_document, trust_allows
from tests.deploy.deploy_world import ACCESS, DEPLOY_ENV, S_YAML
from tests.deploy.s_render import load_raw, render

A, B = ACCESS["AccountID"], "2222222222222222"
CONFIG = {  # made-up accounts and instances
    "source": {"account_id": A, "region": "cn-hangzhou", "instance_id": "cri-madeupsource01"},
    "targets": [{"name": "beijing", "account_id": B, "region": "cn-beijing",
                 "instance_id": "cri-madeuptarget01",
                 "reader_role_arn": f"acs:ram::{B}:role/acrsync-reader"}],
    "ledger": {"backend": "tablestore", "endpoint": "https://acrsync.cn-hangzhou.ots.aliyuncs.com",
               "instance": "acrsync"},
}
# RAM: a custom policy document holds at most 6,144 characters
# (https://www.alibabacloud.com/help/en/ram/product-overview/limits).
MAX_POLICY_CHARS = 6144


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("policies")
    cfg = tmp / "acrsync.yaml"
    cfg.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    out = tmp / "out"
    result = CliRunner().invoke(app, ["permissions", "--config", str(cfg), "--out-dir", str(out)],
                                env={"ACRSYNC_LOG_PROJECT": DEPLOY_ENV["ACRSYNC_LOG_PROJECT"]})
    assert result.exit_code == 0, result.output
    return out, result.stdout


@pytest.fixture(scope="module")
def deployed():
    return render(load_raw(S_YAML), DEPLOY_ENV, ACCESS)


def _doc(written, name: str) -> dict:
    return json.loads((written[0] / name).read_text(encoding="utf-8"))


def test_one_valid_document_per_principal(written):
    out, _ = written
    names = sorted(p.name for p in out.glob("*.json"))
    assert names == sorted(["function.json", "function-trust.json", "deployer.json", "operator.json",
                            "reader-beijing.json", "applier-beijing.json"])
    for name in names:
        text = (out / name).read_text(encoding="utf-8")
        doc = load_document(text)                      # RAM's structure rules (localcloud's judge)
        assert len(json.dumps(doc, separators=(",", ":"))) <= MAX_POLICY_CHARS, name
        for st in doc["Statement"]:
            if name != "function-trust.json":
                assert st["Effect"] == "Allow" and st["Resource"], (name, st)


def test_the_printed_commands_apply_every_file(written):
    out, printed = written
    for name in ("function.json", "deployer.json", "operator.json", "reader-beijing.json",
                 "applier-beijing.json"):
        assert f"--PolicyDocument \"$(cat {out / name})\"" in printed
    assert ("aliyun ram CreateRole --RoleName acrsync-fc --AssumeRolePolicyDocument "
            f"\"$(cat {out / 'function-trust.json'})\"") in printed
    assert ("AttachPolicyToRole --PolicyType Custom --PolicyName acrsync-function "
            "--RoleName acrsync-fc") in printed
    assert ("AttachPolicyToRole --PolicyType Custom --PolicyName acrsync-reader-beijing "
            "--RoleName acrsync-reader") in printed


def test_function_compute_may_assume_the_function_role(written):
    trust = _doc(written, "function-trust.json")
    assert trust_allows(trust, service=FC_SERVICE)
    assert not trust_allows(trust, account_id=B)


def test_the_function_role_covers_what_s_yaml_makes_it_do(written, deployed):
    doc = [_doc(written, "function.json")]
    props = {n: r["props"] for n, r in deployed["resources"].items()}
    compliance = f"acs:fc:cn-hangzhou:{A}:functions/{props['compliance']['functionName']}"
    assert is_allowed(doc, "fc:InvokeFunction", compliance)        # backfill fans out to itself
    queue = props["on_push"]["asyncInvokeConfig"]["destinationConfig"]["onFailure"]["destination"]
    assert is_allowed(doc, "mns:SendMessage", queue)
    log = props["on_push"]["logConfig"]
    assert is_allowed(doc, "log:PostLogStoreLogs",
                      f"acs:log:cn-hangzhou:{A}:project/{log['project']}/logstore/{log['logstore']}")
    assert is_allowed(doc, "cr:CreateRepositorySync",
                      f"acs:cr:cn-hangzhou:{A}:repository/cri-madeupsource01/a/b")
    assert not is_allowed(doc, "ram:PassRole", f"acs:ram::{A}:role/acrsync-fc")


def test_the_deployer_covers_what_fc3_does(written, deployed):
    doc = [_doc(written, "deployer.json")]
    role = deployed["resources"]["on_push"]["props"]["role"]
    assert is_allowed(doc, "ram:PassRole", f"acs:ram::{A}:role/{role}")
    assert not is_allowed(doc, "ram:PassRole", f"acs:ram::{A}:role/someone-else")
    for name, resource in deployed["resources"].items():
        fn = f"acs:fc:cn-hangzhou:{A}:functions/{resource['props']['functionName']}"
        for action in ("fc:CreateFunction", "fc:UpdateFunction", "fc:PutAsyncInvokeConfig",
                       "fc:PutConcurrencyConfig"):
            assert is_allowed(doc, action, fn), (name, action)
        for trigger in resource["props"]["triggers"]:
            assert is_allowed(doc, "fc:CreateTrigger", f"{fn}/triggers/{trigger['triggerName']}")
    layer = deployed["vars"]["layerName"]
    assert is_allowed(doc, "fc:CreateLayerVersion", f"acs:fc:cn-hangzhou:{A}:layers/{layer}")
    assert is_allowed(doc, "fc:GetTempBucketToken", "*")               # the temporary OSS upload
    statements = load_document(doc[0])["Statement"]
    slr = [s for s in statements if s["Action"] == ["ram:CreateServiceLinkedRole"]]
    assert slr and "*.eventbridge.aliyuncs.com" in slr[0]["Condition"]["StringLike"]["ram:ServiceName"]
    # Nothing outside acrsync's own functions.
    assert not is_allowed(doc, "fc:DeleteFunction", f"acs:fc:cn-hangzhou:{A}:functions/payments")


def test_json_output_names_every_principal():
    assert {p.value for p in Principal} == {"function", "deployer", "reader", "applier", "operator"}

"""localcloud FC rules without HTTP: EventBridge pattern matching and the scenario's ``functions:`` checks."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from localcloud.fc.models import backend_of, matches, pattern_problems
from localcloud.scenario import ScenarioError
from localcloud.server import LocalCloud
from tests.demo_world import ACCOUNT_A, ACCOUNT_B, DEMO_SCENARIO, FC_ROLE_ARN

FIXTURES = Path(__file__).parent / "fc_fixtures" / "basic"
PUSH = {"source": "acs.cr", "type": "cr:Artifact:PushCompleted", "aliyunaccountid": ACCOUNT_A,
        "data": {"InstanceId": "cri-demosource01", "RepoNamespaceName": "team-a", "Tag": "v1", "Size": 3,
                 "Labels": ["blue", "green"]}}


@pytest.mark.parametrize("pattern,expected", [
    ({"source": ["acs.cr"]}, True),
    ({"source": ["acs.oss", "acs.cr"]}, True),                                  # array values OR
    ({"source": ["acs.cr"], "type": ["cr:Artifact:PushCompleted"]}, True),      # keys AND
    ({"source": ["acs.cr"], "type": ["cr:Artifact:SynchronizationCompleted"]}, False),
    ({"source": ["ACS.CR"]}, False),                                            # case-sensitive
    ({"data": {"RepoNamespaceName": ["team-a"], "Tag": ["v1", "v2"]}}, True),   # nested keys
    ({"data": {"RepoNamespaceName": ["team-b"]}}, False),
    ({"data": {"Missing": ["x"]}}, False),                                      # absent key never matches
    ({"source": {"nested": ["x"]}}, False),                                     # structure must match
    ({"data": {"Size": [3]}}, True),
    ({"data": {"Size": ["3"]}}, False),                                         # a string is not a number
    # any element of an event array
    ({"data": {"Labels": ["green"]}}, True),
])
def test_eventbridge_exact_matching(pattern, expected):
    assert matches(pattern, PUSH) is expected


@pytest.mark.parametrize("pattern,fragment", [
    ({}, "non-empty mapping"),
    ({"source": "acs.cr"}, "non-empty list"),
    ({"source": []}, "non-empty list"),
    ({"data": {"Tag": [{"prefix": "v"}]}}, "operators are not emulated"),
])
def test_patterns_localcloud_cannot_match_are_refused(pattern, fragment):
    problems = pattern_problems(pattern, "p")
    assert problems and fragment in problems[0]


def _scenario(*functions: dict) -> dict:
    doc = copy.deepcopy(yaml.safe_load(DEMO_SCENARIO.read_text()))
    doc["functions"] = list(functions)
    return doc


def _function(**over) -> dict:
    spec = {"name": "probe", "account": ACCOUNT_A, "region": "cn-hangzhou", "code": str(FIXTURES),
            "handler": "index.echo", "timeout": 5, "role": FC_ROLE_ARN}
    spec.update(over)
    return spec


def test_demo_functions_are_installed_as_s_yaml_names_them():
    backend = backend_of(LocalCloud(DEMO_SCENARIO).world)
    on_push = backend.function(ACCOUNT_A, "acrsync-on-push")
    reconcile = backend.function(ACCOUNT_A, "acrsync-reconcile")
    assert on_push is not None and reconcile is not None
    assert (on_push.timeout, reconcile.timeout, on_push.runtime) == (120, 600, "python3.10")
    assert (on_push.code_dir / "index.py").is_file() and on_push.role_arn == FC_ROLE_ARN
    assert on_push.environment["ACRSYNC_CONFIG"].endswith(".acrsync/demo/acrsync.yaml")
    assert [p.name for p in backend.pythonpath] == ["shared"]
    assert backend.function(ACCOUNT_B, "acrsync-on-push") is None


def test_every_problem_in_functions_is_reported_with_its_path(tmp_path):
    untrusting = _scenario()
    untrusting["accounts"][0]["roles"].append({
        "name": "no-fc", "trust_policy": {"Version": "1", "Statement": [
            {"Effect": "Allow", "Action": "sts:AssumeRole",
             "Principal": {"RAM": [f"acs:ram::{ACCOUNT_A}:root"]}}]}})
    untrusting["functions"] = [
        _function(name="9starts-with-digit"),
        _function(name="twice"), _function(name="twice"),
        _function(name="nowhere", account="4444444444444444", role=None),
        _function(name="no-code", code=str(tmp_path)),
        _function(name="foreign-role", role=f"acs:ram::{ACCOUNT_B}:role/acrsync-reader"),
        _function(name="untrusted-role", role=f"acs:ram::{ACCOUNT_A}:role/no-fc"),
        _function(name="reserved-env", environment={"FC_REGION": "x"}),
        _function(name="bad-trigger", triggers=[{"type": "eventbridge", "pattern": {"source": "acs.cr"}}]),
        _function(name="bad-runtime", runtime="nodejs20"),
    ]
    with pytest.raises(ScenarioError) as err:
        LocalCloud(untrusting)
    text = "\n".join(err.value.problems)
    for fragment in ["functions[0].name", "functions[2].name: function twice is declared twice",
                     "functions[3].account: account 4444444444444444 is not declared",
                     f"functions[4].code: {tmp_path} has no index.py",
                     f"functions[5].role: the role must be in the function's account {ACCOUNT_A}",
                     "functions[6].role: role no-fc's trust policy does not let fc.aliyuncs.com assume it",
                     "functions[7].environment.FC_REGION", "functions[8].triggers[0].pattern.source",
                     "functions[9].runtime"]:
        assert fragment in text
    assert len(err.value.problems) == 9


def test_fc_pythonpath_entries_must_exist(tmp_path):
    doc = _scenario(_function())
    doc["settings"]["fc_pythonpath"] = [str(tmp_path / "missing")]
    with pytest.raises(ScenarioError, match="settings.fc_pythonpath: .*missing is not a directory"):
        LocalCloud(doc)

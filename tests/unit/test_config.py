"""Config validation: every error names the field and says how to fix it."""

import copy

import pytest
import yaml

from acrsync.config import ConfigError, load_config, parse_config

GOOD = {
    "source": {"account_id": "1111111111111111", "region": "cn-hangzhou", "instance_id": "cri-demosource01"},
    "targets": [{
        "name": "beijing-prod", "account_id": "2222222222222222", "region": "cn-beijing",
        "instance_id": "cri-demotarget01", "namespaces": ["team-a", "team-b*"], "exclude": ["team-a/tmp-*"],
        "tag_filter": r"^v\d+\.\d+\.\d+$",
        "reader_role_arn": "acs:ram::2222222222222222:role/acrsync-reader",
    }],
    "ledger": {"backend": "sqlite", "path": ".acrsync/ledger.db"},
}


def with_change(path: str, value):
    doc = copy.deepcopy(GOOD)
    node = doc
    parts = path.split(".")
    for p in parts[:-1]:
        node = node[int(p)] if p.isdigit() else node[p]
    last = parts[-1]
    if value is KeyError:
        del node[last]
    elif isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return doc


def problems(doc) -> str:
    with pytest.raises(ConfigError) as e:
        parse_config(doc)
    return "\n".join(e.value.problems)


def test_good_config_loads_with_defaults():
    cfg = parse_config(GOOD)
    t = cfg.target("beijing-prod")
    assert t.tag_regex.fullmatch("v1.2.3")
    assert t.instance_arn == "acs:cr:cn-beijing:2222222222222222:instance/cri-demotarget01"
    assert cfg.grants.blocked_ttl_seconds < cfg.grants.cache_ttl_seconds
    assert cfg.reconcile.max_attempts == 5


def test_bad_regex_names_the_field_and_the_fix():
    msg = problems(with_change("targets.0.tag_filter", "v(1"))
    assert "targets.0.tag_filter" in msg and "does not compile" in msg and "whole tag" in msg


def test_account_id_must_be_digits():
    msg = problems(with_change("source.account_id", "acct-A"))
    assert "source.account_id" in msg and "digits" in msg


def test_account_id_given_as_a_number_is_accepted():
    cfg = parse_config(with_change("source.account_id", 1111111111111111))
    assert cfg.source.account_id == "1111111111111111"


def test_instance_id_must_look_like_cri():
    msg = problems(with_change("targets.0.instance_id", "i-abc"))
    assert "targets.0.instance_id" in msg and "cri-" in msg


def test_unknown_region():
    msg = problems(with_change("targets.0.region", "cn-atlantis"))
    assert "targets.0.region" in msg and "unknown region" in msg


def test_public_to_finance_is_refused_quoting_the_rule():
    msg = problems(with_change("targets.0.region", "cn-shanghai-finance-1"))
    assert "Finance/Gov" in msg and "cannot be replicated from a public cloud region" in msg


def test_duplicate_target_names():
    doc = copy.deepcopy(GOOD)
    doc["targets"].append(copy.deepcopy(doc["targets"][0]))
    doc["targets"][1]["instance_id"] = "cri-other0001"
    msg = problems(doc)
    assert "used twice" in msg and "beijing-prod" in msg


def test_unknown_key_is_reported():
    msg = problems(with_change("targets.0.tag_fliter", ".*"))
    assert "targets.0.tag_fliter" in msg and "unknown key" in msg


def test_missing_key_is_reported():
    msg = problems(with_change("source.instance_id", KeyError))
    assert "source.instance_id: required key is missing" in msg


def test_repository_glob_shape():
    msg = problems(with_change("targets.0.repositories", ["api"]))
    assert "namespace/repo" in msg


def test_reader_role_must_be_in_the_target_account():
    msg = problems(with_change("targets.0.reader_role_arn", "acs:ram::3333333333333333:role/r"))
    assert "reader_role_arn" in msg and "target account" in msg


def test_tablestore_backend_needs_endpoint_and_instance():
    msg = problems(with_change("ledger", {"backend": "tablestore"}))
    assert "endpoint and instance" in msg and "ots.aliyuncs.com" in msg


def test_target_cannot_be_the_source():
    msg = problems(with_change("targets.0.instance_id", "cri-demosource01"))
    assert "is the source instance" in msg


def test_several_problems_are_reported_together():
    doc = with_change("targets.0.tag_filter", "(")
    doc["source"]["instance_id"] = "nope"
    assert len(problems(doc).splitlines()) == 2


def test_load_from_env(tmp_path, monkeypatch):
    p = tmp_path / "acrsync.yaml"
    p.write_text(yaml.safe_dump(GOOD))
    monkeypatch.setenv("ACRSYNC_CONFIG", str(p))
    assert load_config().source.instance_id == "cri-demosource01"


def test_load_errors_say_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv("ACRSYNC_CONFIG", raising=False)
    with pytest.raises(ConfigError, match="ACRSYNC_CONFIG"):
        load_config()
    bad = tmp_path / "bad.yaml"
    bad.write_text("source: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")


def test_tablestore_endpoint_and_instance_from_the_environment():
    from acrsync.config import with_env_overrides

    doc = with_change("ledger", {"backend": "tablestore",
                                 "endpoint": "https://a.cn-hangzhou.ots.aliyuncs.com",
                                 "instance": "a"})
    cfg = parse_config(doc)
    env = {"ACRSYNC_OTS_ENDPOINT": "https://b.cn-hangzhou.vpc.tablestore.aliyuncs.com",
           "ACRSYNC_OTS_INSTANCE": "b"}
    out = with_env_overrides(cfg, env)
    assert (out.ledger.endpoint, out.ledger.instance) == (env["ACRSYNC_OTS_ENDPOINT"], "b")
    assert with_env_overrides(cfg, {}) == cfg
    sqlite = parse_config(GOOD)
    assert with_env_overrides(sqlite, env) == sqlite        # only a Tablestore ledger is overridden

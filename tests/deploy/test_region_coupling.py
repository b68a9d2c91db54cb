"""One region for the source instance, the functions (s.yaml vars.region, ACRSYNC_REGION in their
environment) and the ledger's Tablestore instance: a mismatch is refused wherever the config is loaded for
use (the functions, the CLI), naming both values."""

from __future__ import annotations

import pytest

from acrsync.config import ConfigError, ledger_region, parse_config, region_mismatches, with_env_overrides

DOC = {  # made-up accounts and instances
    "source": {"account_id": "1111111111111111", "region": "cn-hangzhou",
               "instance_id": "cri-madeupsource01"},
    "targets": [{"name": "bj", "account_id": "2222222222222222", "region": "cn-beijing",
                 "instance_id": "cri-madeuptarget01"}],
    "ledger": {"backend": "tablestore", "endpoint": "https://acrsync.cn-hangzhou.ots.aliyuncs.com",
               "instance": "acrsync"},
}


def test_matching_regions_pass():
    cfg = parse_config(DOC)
    assert region_mismatches(cfg, "cn-hangzhou") == []
    assert with_env_overrides(cfg, {"ACRSYNC_REGION": "cn-hangzhou"}) == cfg


def test_the_deploy_region_must_be_the_sources():
    cfg = parse_config(DOC)
    with pytest.raises(ConfigError) as e:
        with_env_overrides(cfg, {"ACRSYNC_REGION": "cn-shanghai"})
    assert "is cn-shanghai but source.region in the config is cn-hangzhou" in str(e.value)


def test_the_ledger_must_be_in_the_sources_region_even_through_the_environment():
    cfg = parse_config(DOC)
    with pytest.raises(ConfigError, match="ledger.endpoint is in region cn-beijing but source.region is "
                                          "cn-hangzhou"):
        with_env_overrides(cfg,
                           {"ACRSYNC_OTS_ENDPOINT": "https://acrsync.cn-beijing.vpc.tablestore.aliyuncs.com"})


@pytest.mark.parametrize("endpoint,region", [
    ("https://acrsync.cn-hangzhou.ots.aliyuncs.com", "cn-hangzhou"),
    ("https://a-b.ap-southeast-1.vpc.tablestore.aliyuncs.com/", "ap-southeast-1"),
    ("http://127.0.0.1:8080", None),                       # an emulator: no region to compare
])
def test_the_ledger_region_is_read_from_documented_endpoints(endpoint, region):
    doc = {**DOC, "ledger": {**DOC["ledger"], "endpoint": endpoint}}
    assert ledger_region(parse_config(doc)) == region


def test_unset_or_empty_deploy_region_is_not_checked():
    cfg = parse_config(DOC)
    assert with_env_overrides(cfg, {"ACRSYNC_REGION": ""}) == cfg

"""Alibaba Cloud region ids acrsync knows, and which of them are Finance or Gov cloud regions.

ACR cannot replicate from a public-cloud region into a Finance or Gov cloud region (the rule is
quoted in ``PUBLIC_TO_RESTRICTED_RULE``), so the config and the prerequisite check both need this.
"""

from __future__ import annotations

PUBLIC_REGIONS = frozenset({
    "cn-qingdao", "cn-beijing", "cn-zhangjiakou", "cn-huhehaote", "cn-wulanchabu", "cn-hangzhou",
    "cn-shanghai", "cn-nanjing", "cn-fuzhou", "cn-shenzhen", "cn-heyuan", "cn-guangzhou", "cn-chengdu",
    "cn-wuhan-lr", "cn-hongkong", "ap-northeast-1", "ap-northeast-2", "ap-southeast-1", "ap-southeast-2",
    "ap-southeast-3", "ap-southeast-5", "ap-southeast-6", "ap-southeast-7", "ap-south-1", "us-east-1",
    "us-west-1", "eu-west-1", "eu-central-1", "me-east-1", "me-central-1", "na-south-1",
})

FINANCE_REGIONS = frozenset({
    "cn-hangzhou-finance", "cn-shanghai-finance-1", "cn-shenzhen-finance-1", "cn-beijing-finance-1",
})

GOV_REGIONS = frozenset({"cn-north-2-gov-1"})

KNOWN_REGIONS = PUBLIC_REGIONS | FINANCE_REGIONS | GOV_REGIONS

PUBLIC_TO_RESTRICTED_RULE = (
    "Images cannot be replicated from a public cloud region to a non-public cloud region such as an "
    "Alibaba Finance Cloud or Alibaba Gov Cloud region."
)


def is_restricted(region: str) -> bool:
    """True for Finance Cloud and Gov Cloud regions."""
    return region in FINANCE_REGIONS or region in GOV_REGIONS or "-finance" in region or "-gov" in region


def replication_allowed(source_region: str, target_region: str) -> bool:
    """The documented region rule: public -> Finance/Gov is refused; everything else may replicate."""
    return not (not is_restricted(source_region) and is_restricted(target_region))

"""``/_localcloud/fc/role-credentials``: the keys FC hands a function (its role's), for handlers run outside
localcloud's runtime; refused where FC would refuse to run the function."""

from __future__ import annotations

import pytest

from tests.demo_world import ACCOUNT_A, control, http_json


def test_a_function_gets_its_roles_temporary_keys(cloud):
    cred = control(cloud, "fc/role-credentials", {"account": ACCOUNT_A, "function": "acrsync-on-push"})
    assert cred["access_key_id"].startswith("STS.") and cred["security_token"]


@pytest.mark.parametrize("body, status", [
    ({"account": ACCOUNT_A, "function": "no-such-function"}, 404),
    ({"account": ACCOUNT_A}, 400),
])
def test_unknown_functions_and_bad_bodies_are_refused(cloud, body, status):
    got, _ = http_json(cloud, "POST", "/_localcloud/fc/role-credentials", body)
    assert got == status

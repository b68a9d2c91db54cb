"""Tablestore ownership, RAM authorization and size limits through the real ``tablestore.OTSClient``
(scenarios/demo.yaml: Tablestore instance acrsyncdemo belongs to account A; every key there is made up).

Sources: https://www.alibabacloud.com/help/en/tablestore/developer-reference/error-codes (403 OTSAuthFailed,
403 OTSNoPermissionAccess); https://www.alibabacloud.com/help/en/tablestore/product-overview/general-limits
(2 MB per attribute column value, 4 MB per row)."""

from __future__ import annotations

import logging

import pytest
from tablestore import (
    BatchWriteRowRequest,
    CapacityUnit,
    OTSClient,
    OTSServiceError,
    PutRowItem,
    ReservedThroughput,
    Row,
    TableInBatchWriteRowItem,
    TableMeta,
    TableOptions,
)
from tablestore.retry import NoRetryPolicy

from tests.demo_world import (
    A_KEY_ID,
    A_OPERATOR_KEY_ID,
    A_OPERATOR_SECRET,
    A_SECRET,
    B_KEY_ID,
    B_SECRET,
    CLI_KEY_ID,
    CLI_SECRET,
    SMALL_A,
    SMALL_B,
    fc_role_credentials,
)

INSTANCE = "acrsyncdemo"
PK = [("key", "STRING")]
MB = 1024 * 1024

logging.getLogger("tablestore-client").setLevel(logging.CRITICAL)   # the SDK logs every refusal it sees


def ots(cloud, key_id: str, secret: str, token: str | None = None, instance: str = INSTANCE) -> OTSClient:
    return OTSClient(cloud.url, key_id, secret, instance, sts_token=token, retry_policy=NoRetryPolicy())


def create(client: OTSClient, name: str) -> None:
    client.create_table(TableMeta(name, PK), TableOptions(), ReservedThroughput(CapacityUnit(0, 0)))


def refused(fn, *args) -> OTSServiceError:
    with pytest.raises(OTSServiceError) as info:
        fn(*args)
    return info.value


def code(err: OTSServiceError) -> tuple[int, str]:
    return err.get_http_status(), err.get_error_code()


def test_the_cli_user_reads_and_writes_the_ledger_tables_it_is_granted(cloud):
    cli = ots(cloud, CLI_KEY_ID, CLI_SECRET)
    create(cli, "acrsync_records")
    cli.put_row("acrsync_records", Row([("key", "k1")], [("state", "QUEUED")]))
    _, row, _ = cli.get_row("acrsync_records", [("key", "k1")], max_version=1)
    assert row.attribute_columns[0][:2] == ("state", "QUEUED")


def test_the_functions_role_writes_with_its_sts_token(cloud):
    create(ots(cloud, CLI_KEY_ID, CLI_SECRET), "acrsync_records")
    cred = fc_role_credentials(cloud)
    fn = ots(cloud, cred.access_key_id, cred.secret, cred.token)
    fn.put_row("acrsync_records", Row([("key", "k2")], [("state", "CREATED")]))
    # acrsync-fc may not create tables (only the CLI's `ledger init` does)
    assert code(refused(create, fn, "acrsync_other")) == (403, "OTSNoPermissionAccess")


def test_a_table_outside_the_granted_prefix_is_no_permission_access(cloud):
    cli = ots(cloud, CLI_KEY_ID, CLI_SECRET)
    err = refused(create, cli, "other_records")
    assert code(err) == (403, "OTSNoPermissionAccess")
    assert "no permission to access the requested resource" in err.get_error_message()


def test_a_user_without_ots_permissions_is_refused_every_call(cloud):
    create(ots(cloud, CLI_KEY_ID, CLI_SECRET), "acrsync_records")
    operator = ots(cloud, A_OPERATOR_KEY_ID, A_OPERATOR_SECRET)
    assert code(refused(operator.get_row, "acrsync_records", [("key", "k")], None, None, 1)) == \
        (403, "OTSNoPermissionAccess")
    assert code(refused(operator.list_table)) == (403, "OTSNoPermissionAccess")


def test_every_table_of_a_batch_is_authorized(cloud):
    cli = ots(cloud, CLI_KEY_ID, CLI_SECRET)
    create(cli, "acrsync_records")
    root = ots(cloud, A_KEY_ID, A_SECRET)                     # the owner's root may create any table
    create(root, "elsewhere")
    batch = BatchWriteRowRequest()
    batch.add(TableInBatchWriteRowItem("acrsync_records",
                                       [PutRowItem(Row([("key", "a")], [("v", 1)]), None)]))
    batch.add(TableInBatchWriteRowItem("elsewhere", [PutRowItem(Row([("key", "a")], [("v", 1)]), None)]))
    assert code(refused(cli.batch_write_row, batch)) == (403, "OTSNoPermissionAccess")


def test_another_accounts_instance_and_a_missing_instance_are_auth_failed(cloud):
    err = refused(ots(cloud, B_KEY_ID, B_SECRET).list_table)
    assert code(err) == (403, "OTSAuthFailed")
    assert err.get_error_message() == "The user does not have permission to access the instance."
    err = refused(ots(cloud, CLI_KEY_ID, CLI_SECRET, instance="nosuchinstance").list_table)
    assert (code(err), err.get_error_message()) == ((403, "OTSAuthFailed"), "The instance does not exist.")


def test_without_a_tablestore_section_an_instance_belongs_to_its_first_user(cloud_factory):
    cloud = cloud_factory({"accounts": [
        {"id": SMALL_A, "access_keys": [{"id": "AK-DEMO-OTS-ONE", "secret": "made-up-one"}]},
        {"id": SMALL_B, "access_keys": [{"id": "AK-DEMO-OTS-TWO", "secret": "made-up-two"}]}]})
    assert ots(cloud, "AK-DEMO-OTS-ONE", "made-up-one", instance="shared").list_table() == ()
    assert code(refused(ots(cloud, "AK-DEMO-OTS-TWO", "made-up-two", instance="shared").list_table)) == \
        (403, "OTSAuthFailed")


@pytest.mark.parametrize(("cells", "fragment"), [
    ([("big", "x" * (2 * MB + 1))], "attribute column: 'big' exceeds the MaxLength:2097152"),
    ([("a", b"x" * (2 * MB)), ("b", b"y" * (2 * MB))], "total size of the row exceeds the MaxLength:4194304"),
])
def test_cell_and_row_size_limits_are_parameter_invalid(cloud, cells, fragment):
    root = ots(cloud, A_KEY_ID, A_SECRET)
    create(root, "sizes")
    root.put_row("sizes", Row([("key", "fits")], [("a", b"x" * (2 * MB))]))      # exactly 2 MB is allowed
    err = refused(root.put_row, "sizes", Row([("key", "big")], cells))
    assert code(err) == (400, "OTSParameterInvalid")
    assert fragment in err.get_error_message()

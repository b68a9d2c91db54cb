"""What only the Tablestore backend has: index rows, retries of its own writes inside the session's
budget, calls per operation counted in ``session.calls``, refreshing credentials. Real OTSClient against
localcloud; faults come from localcloud or from a relay that loses replies after the write was applied."""

from __future__ import annotations

import dataclasses
import http.client
import itertools
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlparse

import pytest

from acrsync.clock import ManualClock
from acrsync.cloud.clients import CloudSession
from acrsync.cloud.credentials import Creds
from acrsync.cloud.ots import INF_MAX, INF_MIN, Condition, Row, RowExistenceExpectation
from acrsync.cloud.retry import Budget, RetryPolicy
from acrsync.ledger import LedgerError
from acrsync.ledger.tablestore import SCHEMAS, TablestoreLedger, micros
from acrsync.records import Report, Status
from tests.contract.test_ledger_contract import created, rec
from tests.ledger_world import DEMO_KEY_ID, DEMO_KEY_SECRET, OTS_INSTANCE

_prefixes = itertools.count()


@pytest.fixture
def cloud(localcloud_ots):
    localcloud_ots.clear_faults()
    localcloud_ots.reset_stats()
    yield localcloud_ots
    localcloud_ots.clear_faults()


def make(url: str, **kw) -> TablestoreLedger:
    led = TablestoreLedger.from_keys(url, OTS_INSTANCE, kw.pop("access_key_id", DEMO_KEY_ID),
                                     kw.pop("access_key_secret", DEMO_KEY_SECRET),
                                     table_prefix=kw.pop("table_prefix", f"ts{next(_prefixes)}"), **kw)
    led.init()
    return led


def index(ledger: TablestoreLedger, suffix: str) -> list:
    names = [n for n, _ in SCHEMAS[suffix]]
    return list(ledger.ots.get_range(ledger.table(suffix), [(n, INF_MIN) for n in names],
                                     [(n, INF_MAX) for n in names]))


def writes(cloud) -> int:
    stats = cloud.stats()
    return sum(stats.get(a, 0) for a in ("PutRow", "UpdateRow", "DeleteRow", "BatchWriteRow"))


def calls(cloud) -> int:
    return sum(cloud.stats().values())


def test_push_path_costs_one_call_per_write(cloud):
    ledger = make(cloud.url)
    cloud.reset_stats()
    stored = created(ledger, rec())
    assert calls(cloud) == 1, cloud.stats()
    cloud.reset_stats()
    ledger.update(dataclasses.replace(stored, status=Status.PENDING, task_id="rst-1"))
    assert calls(cloud) == 1, cloud.stats()


def test_a_duplicate_create_reads_the_stored_record_once(cloud):
    ledger = make(cloud.url)
    stored = created(ledger, rec(status=Status.SUCCESS))        # no index rows: a plain PutRow
    cloud.reset_stats()
    ok, existing = ledger.create_if_absent(rec(status=Status.SUCCESS, event_id="ev-again"))
    assert ok is False and existing == stored
    assert cloud.stats() == {"PutRow": 1, "GetRow": 1}


def test_closing_a_record_removes_its_index_rows(cloud):
    ledger = make(cloud.url)
    stored = created(ledger, rec(status=Status.ERROR, next_retry_at=10.0))
    assert len(index(ledger, "open")) == 1
    ledger.update(dataclasses.replace(stored, status=Status.SUCCESS, next_retry_at=None))
    assert index(ledger, "open") == []


def test_readers_skip_stale_index_rows(cloud):
    ledger = make(cloud.url)
    live = created(ledger, rec(tag="live", created_at=2.0, status=Status.ERROR, next_retry_at=5.0))
    closed = created(ledger, rec(tag="closed", created_at=1.0, status=Status.SUCCESS))
    ignore = Condition(RowExistenceExpectation.IGNORE)
    # What a crash between writing index rows and the record leaves behind:
    for suffix, pk in [("open", [("created_us", micros(1.0)), ("key", closed.key)]),
                       ("open", [("created_us", micros(0.5)), ("key", "cri-x/ns/gone:v1@-#t")]),
                       ("open", [("created_us", micros(0.7)), ("key", live.key)]),
                       ("tasks", [("task_id", "rst-ghost"), ("key", live.key)])]:
        ledger.ots.put_row(ledger.table(suffix), Row(pk, [("v", 1)]), ignore)
    assert ledger.open_records().records == [live]
    assert ledger.get_by_task("rst-ghost") is None


def test_update_row_is_retried_after_a_server_error_and_counted(cloud):
    ledger = make(cloud.url)
    stored = created(ledger, rec())
    before = ledger.ots.session.calls["ots:UpdateRow"]
    cloud.set_faults("UpdateRow", error_rate=1.0, count=1)
    written = ledger.update(dataclasses.replace(stored, status=Status.SYNCHRONIZING))
    assert written.version == 2
    assert cloud.stats()["UpdateRow"] == 2
    assert ledger.ots.session.calls["ots:UpdateRow"] - before == 2     # every HTTP attempt, as the cloud saw


def test_every_tablestore_call_is_counted_in_the_session(cloud):
    ledger = make(cloud.url)
    session = ledger.ots.session
    session.calls.clear()
    cloud.reset_stats()
    stored = created(ledger, rec())
    ledger.update(dataclasses.replace(stored, status=Status.PENDING, task_id="rst-1"))
    ledger.get_by_task("rst-1")
    ledger.open_records()
    report = Report(kind="compliance", id="r1", created_at=1.0)
    ledger.put_report(report)
    assert ledger.latest_report("compliance") == report
    assert {k.removeprefix("ots:"): v for k, v in session.calls.items()} == cloud.stats()


def test_a_budget_bounds_the_retries_and_their_sleeps(cloud):
    clock = ManualClock(1000.0)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.advance(seconds)

    session = CloudSession.from_keys(DEMO_KEY_ID, DEMO_KEY_SECRET, env={}, clock=clock, sleep=sleep,
                                     policy=RetryPolicy(max_attempts=100, base=0.5, cap=2.0),
                                     rand=lambda: 1.0)
    ledger = TablestoreLedger(session.ots(cloud.url, OTS_INSTANCE), table_prefix=f"ts{next(_prefixes)}")
    ledger.init()
    cloud.set_faults("GetRow", error_rate=1.0)
    bounded = ledger.scoped(Budget.after(5.0, clock))
    with pytest.raises(LedgerError, match="GetRow.*time budget"):
        bounded.get(rec().key)
    assert slept and sum(slept) <= 5.0
    assert clock.now() <= 1005.0
    assert session.calls["ots:GetRow"] < 100


def test_throttled_batch_writes_are_retried(cloud):
    ledger = make(cloud.url)
    cloud.set_faults("BatchWriteRow", throttle_rate=1.0, count=1)
    ok, stored = ledger.create_if_absent(rec(status=Status.ERROR, next_retry_at=3.0))
    assert ok and ledger.open_records().records == [stored]
    assert cloud.stats()["BatchWriteRow"] == 2


def test_a_persistent_failure_is_a_ledger_error_naming_the_operation(cloud):
    ledger = make(cloud.url)
    cloud.set_faults("GetRow", error_rate=1.0)
    with pytest.raises(LedgerError, match="GetRow"):
        ledger.get(rec().key)


class _LossyRelay:
    """Forwards to localcloud but, for the first ``lose`` calls of ``api``, drops the reply of a request
    the server DID apply and answers 500 instead: the client cannot know its write landed."""

    def __init__(self, upstream: str, api: str, lose: int):
        from localcloud.ots.wire import error_response

        target = urlparse(upstream)
        relay = self

        class Handler(BaseHTTPRequestHandler):
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
                conn.request("POST", self.path, body, dict(self.headers))
                reply = conn.getresponse()
                data, headers, status = reply.read(), reply.getheaders(), reply.status
                conn.close()
                if self.path.strip("/") == api and relay.lose > 0:
                    relay.lose -= 1
                    relay.lost += 1
                    status, hdrs, data = error_response(api, 500, "OTSInternalServerError", "reply lost")
                    headers = list(hdrs.items())
                self.send_response(status)
                for k, v in headers:
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.lose, self.lost = lose, 0
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.parametrize("api", ["PutRow", "BatchWriteRow"])
def test_create_retried_after_a_lost_reply_still_reports_created(cloud, api):
    relay = _LossyRelay(cloud.url, api, lose=1)
    try:
        ledger = make(relay.url)
        record = rec(status=Status.SUCCESS) if api == "PutRow" else rec()   # no index rows: a plain PutRow
        ok, stored = ledger.create_if_absent(record)
        assert relay.lost == 1
        assert ok is True and stored.version == 1
        assert ledger.create_if_absent(record)[0] is False
    finally:
        relay.close()


def test_update_retried_after_a_lost_reply_is_not_a_conflict(cloud):
    relay = _LossyRelay(cloud.url, "UpdateRow", lose=1)
    try:
        ledger = make(relay.url)
        stored = created(ledger, rec())
        written = ledger.update(dataclasses.replace(stored, status=Status.SYNCHRONIZING))
        assert relay.lost == 1
        assert written.version == 2 and ledger.get(stored.key) == written
    finally:
        relay.close()


def test_credentials_are_fetched_for_every_request(cloud):
    fetched = []

    class Counting:
        def get(self) -> Creds:
            fetched.append(1)
            return Creds(DEMO_KEY_ID, DEMO_KEY_SECRET, None)

    session = CloudSession(Counting())
    ledger = TablestoreLedger(session.ots(cloud.url, OTS_INSTANCE), table_prefix=f"ts{next(_prefixes)}")
    ledger.init()
    before = len(fetched)
    ledger.get(rec().key)
    ledger.get(rec().key)
    assert len(fetched) == before + 2


def test_a_wrong_secret_is_a_ledger_error_that_says_so(cloud):
    ledger = TablestoreLedger.from_keys(cloud.url, OTS_INSTANCE, DEMO_KEY_ID, "not-the-secret",
                                        table_prefix="tsbad")
    with pytest.raises(LedgerError, match="OTSAuthFailed"):
        ledger.get(rec().key)


def test_importing_the_backend_prints_no_native_codec_warning():
    out = subprocess.run([sys.executable, "-c", "import acrsync.ledger.tablestore"], capture_output=True,
                         text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Native C++" not in out.stderr



def test_open_ledger_takes_endpoint_and_refreshing_keys_from_the_session(cloud):
    from acrsync.cloud.clients import CloudSession
    from acrsync.config import LedgerConfig
    from acrsync.ledger import open_ledger

    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": DEMO_KEY_ID, "ALIBABA_CLOUD_ACCESS_KEY_SECRET": DEMO_KEY_SECRET,
           "ACRSYNC_ENDPOINT": cloud.url}
    session = CloudSession.from_environment(env=env)
    vpc = f"https://{OTS_INSTANCE}.cn-hangzhou.vpc.tablestore.aliyuncs.com"
    cfg = LedgerConfig(backend="tablestore", endpoint=vpc, instance=OTS_INSTANCE,
                       table_prefix=f"ts{next(_prefixes)}")
    ledger = open_ledger(cfg, session)
    assert ledger.endpoint == cloud.url
    ledger.init()
    assert created(ledger, rec()).version == 1

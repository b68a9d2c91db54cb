"""The benchmark harness' arithmetic (pure), and each benchmark module run at smoke sizes against
localcloud, checking the facts its figures rest on (calls counted, records closed), not its timings."""

from __future__ import annotations

import json

import pytest

from bench import __main__ as cli
from bench import emulator_bench, push_bench, reconcile_bench
from bench.harness import Row, Target, median, ratio

# ---- pure ------------------------------------------------------------------------------------------


def test_median_of_odd_and_even_counts():
    assert median([3.0, 1.0, 2.0]) == 2.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5


def test_median_of_nothing_says_what_to_do():
    with pytest.raises(ValueError, match="at least one"):
        median([])


def test_ratio_and_zero_floor():
    assert ratio(3.0, 2.0) == 1.5
    with pytest.raises(ValueError, match="absolute value"):
        ratio(1.0, 0.0)


def test_target_direction():
    assert Target("<=", 1.05).met(1.05) and not Target("<=", 1.05).met(1.06)
    assert Target(">=", 0.8).met(0.8) and not Target(">=", 0.8).met(0.79)
    with pytest.raises(ValueError):
        Target("<", 1.0)


def test_row_judges_ratio_when_it_has_a_floor_else_value():
    with_floor = Row("x", "f", value=2.2, unit="ms", floor=2.0, target=Target("<=", 1.05))
    assert with_floor.ratio == pytest.approx(1.1) and with_floor.met is False
    no_floor = Row("x", "g", value=0.0, unit="calls", target=Target("<=", 0.05))
    assert no_floor.ratio is None and no_floor.met is True
    untargeted = Row("x", "h", value=1.0, unit="s", floor=4.0)
    assert untargeted.ratio == 0.25 and untargeted.met is None
    assert json.loads(json.dumps(with_floor.to_dict()))["target"] == "<= 1.05"


def test_ledger_rows_turn_throughput_into_time_ratios():
    result = {"sqlite": {"create_if_absent": {"ops": 10, "ledger_ops_per_s": 500.0,
                                              "bare_ops_per_s": 1000.0}},
              "tablestore": {"create_if_absent": {"ops": 5, "ledger_ops_per_s": 100.0,
                                                  "bare_ops_per_s": 100.0,
                                                  "calls_per_op": 1.0, "bare_calls_per_op": 1.0},
                             "close_record_calls_per_op": 2.0}}
    rows = {r.figure: r for r in cli.ledger_rows(result)}
    sqlite = rows["SQLite create_if_absent (time ledger / bare)"]
    assert sqlite.value == pytest.approx(2000.0) and sqlite.ratio == pytest.approx(2.0)
    assert sqlite.met is False
    assert rows["Tablestore create_if_absent (time ledger / bare)"].met is True
    assert rows["Tablestore create_if_absent requests/op"].ratio == 1.0
    assert rows["Tablestore closing a record, requests/op"].value == 2.0


def test_only_refuses_unknown_names(capsys):
    assert cli.parse_args(["--only", "push,ledger"]).names == ["push", "ledger"]
    with pytest.raises(SystemExit):
        cli.parse_args(["--only", "push,nonsense"])
    assert "nonsense" in capsys.readouterr().err


# ---- smoke: every module at tiny sizes against localcloud ---------------------------------------------


def test_emulator_bench_counts_every_call_it_times():
    rows, raw = emulator_bench.run(calls=10, rounds=2)
    assert raw["localcloud_get_instance_served"] == raw["expected_served"]
    assert all(r.value > 0 for r in rows) and all(r.ratio > 0 for r in rows[1:])


def test_push_bench_one_call_per_uncovered_event_none_per_covered():
    rows, raw = push_bench.run(events=20, warmup=2, block=10)
    figures = {r.figure: r for r in rows}
    assert raw["uncovered"]["outcomes"] == {"created": 20}
    assert raw["covered"]["outcomes"] == {"covered": 20}
    assert raw["uncovered"]["localcloud_calls"] == {"CreateRepoSyncTask": 20}
    assert figures["OpenAPI calls per uncovered event"].value == 1.0
    assert figures["OpenAPI calls per covered event"].value == 0.0


def test_reconcile_bench_closes_every_record_and_splits_its_calls():
    rows, raw = reconcile_bench.run(repos=6, per_repo=30)
    assert raw["run1"]["counts_after"] == {"SUCCESS": 180} and raw["run1"]["complete"]
    split = raw["run2_tracemalloc"]["split"]
    assert sum(split.values()) == sum(raw["run1"]["calls"].values()) \
        == sum(raw["run1"]["localcloud_calls"].values())
    assert raw["bare_paging"]["tasks_read"] == 180
    assert rows[0].floor == 6


def test_main_writes_the_results_file(tmp_path):
    out = tmp_path / "results.json"
    assert cli.main(["--only", "emulator", "--quick", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["quick"] is True and {r["area"] for r in doc["rows"]} == {"A emulator"}

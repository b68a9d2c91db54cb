"""``python -m bench [--only emulator,push,reconcile,ledger,compliance,backfill,demo,cold] [--quick]
[--json PATH]``

Runs the figures, prints them as one table (value, floor measured in the same run, ratio, target, met)
and writes them to ``bench/results.json``. Missing a target is a finding, not a failure: the exit code
is non-zero only when a benchmark could not run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "true")   # never reach for ECS metadata

from bench.harness import Row, Target, print_table, write_results

RESULTS = Path(__file__).resolve().parent / "results.json"
LEDGER_TARGET = Target("<=", 1.10)


def ledger_rows(result: dict) -> list[Row]:
    """bench.ledger_bench.run_all() output as table rows: microseconds per op, ledger vs bare call."""
    rows = []
    names = {"create_if_absent": "create_if_absent", "compare_and_set": "compare-and-set, status only",
             "compare_and_set_new_task": "compare-and-set, new task id"}
    for backend, label in (("sqlite", "SQLite"), ("tablestore", "Tablestore")):
        figures = result.get(backend) or {}
        for key, name in names.items():
            fig = figures.get(key)
            if not fig:
                continue
            if backend == "tablestore" and key == "compare_and_set":
                name = "compare-and-set, new task id"
            rows.append(Row("ledger", f"{label} {name} (time ledger / bare)", 1e6 / fig["ledger_ops_per_s"],
                            "us/op", floor=1e6 / fig["bare_ops_per_s"], target=LEDGER_TARGET,
                            note=f"{fig['ops']} ops"))
            if "calls_per_op" in fig:
                rows.append(Row("ledger", f"{label} {name} requests/op", fig["calls_per_op"], "requests/op",
                                floor=fig["bare_calls_per_op"], note="HTTP requests seen by localcloud; no "
                                                                     "target set"))
        for key, fig in (figures.get("same_schema") or {}).items():
            rows.append(Row("ledger", f"{label} {names[key]}, floor on the ledger's own schema (time ledger "
                                      "/ bare)",
                            1e6 / fig["ledger_ops_per_s"], "us/op", floor=1e6 / fig["bare_ops_per_s"],
                            target=LEDGER_TARGET,
                            note=f"{fig['ops']} ops; bare statements with precomputed values, same indexes"))
        if "close_record_calls_per_op" in figures:
            rows.append(Row("ledger", f"{label} closing a record, requests/op",
                            figures["close_record_calls_per_op"],
                            "requests/op", note="no target set"))
    return rows


def _emulator(quick: bool):
    from bench import emulator_bench

    return emulator_bench.run(calls=60 if quick else 1000, rounds=3 if quick else 5)


def _push(quick: bool):
    from bench import push_bench

    return push_bench.run(events=100 if quick else 1000, warmup=5 if quick else 10, block=25 if quick else 50)


def _reconcile(quick: bool):
    from bench import reconcile_bench

    rows, raw = reconcile_bench.run(repos=40 if quick else 200, per_repo=50)
    counts = (2_000, 20_000) if quick else (10_000, 100_000)
    memory_rows, memory_raw = reconcile_bench.memory_by_count(counts)
    return rows + memory_rows, {**raw, "memory_by_count": memory_raw}


def _ledger(quick: bool):
    from bench import ledger_bench

    result = ledger_bench.run_all(sqlite_ops=200 if quick else 2000, tablestore_ops=50 if quick else 300)
    return ledger_rows(result), result


def _compliance(quick: bool):
    from bench import compliance_bench

    return compliance_bench.run(repos=100 if quick else 1000, tags=30, mem_repos=16)


def _backfill(quick: bool):
    from bench import backfill_bench

    return backfill_bench.run(repos=5 if quick else 20, tags=100, rate_images=100 if quick else 300)


def _demo(quick: bool):
    from bench import demo_bench

    return demo_bench.run(runs=1)


def _cold_start(quick: bool):
    from bench import cold_start

    result = cold_start.run(rounds=3 if quick else 7)
    return cold_start.rows(result), result


BENCHES: dict[str, Callable[[bool], tuple[list[Row], dict]]] = {
    "emulator": _emulator, "push": _push, "reconcile": _reconcile, "ledger": _ledger,
    "compliance": _compliance, "backfill": _backfill, "demo": _demo, "cold": _cold_start,
}


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1])
    p.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHES)}")
    p.add_argument("--quick", action="store_true", help="smaller sizes (a smoke run, not figures to quote)")
    p.add_argument("--json", type=Path, default=RESULTS, help=f"where to write the results (default "
                                                              f"{RESULTS})")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        p.error(f"unknown benchmark {', '.join(unknown)}; choose from {', '.join(BENCHES)}")
    args.names = names
    return args


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    args = parse_args(sys.argv[1:] if argv is None else argv)
    console = Console(width=None if sys.stdout.isatty() else 200)
    rows: list[Row] = []
    raw: dict = {}
    failed = []
    for name in args.names:
        console.print(f"[bold]{name}[/] ...", end=" ")
        t0 = time.perf_counter()
        try:
            got, detail = BENCHES[name](args.quick)
        except Exception:
            failed.append(name)
            raw[name] = {"error": traceback.format_exc()}
            console.print("[red]failed[/]")
            console.print(traceback.format_exc())
            continue
        rows += got
        raw[name] = {**detail, "bench_seconds": round(time.perf_counter() - t0, 1)}
        console.print(f"done in {time.perf_counter() - t0:.1f} s")
    title = "acrsync benchmarks" + (" (--quick: smoke sizes)" if args.quick else "")
    print_table(rows, title=title, console=console)
    console.print("Ratios are to floors measured in this run; absolute times vary with the machine.")
    write_results(args.json, rows, raw, quick=args.quick)
    console.print(f"results: {args.json}")
    if failed:
        console.print(f"[red]could not run: {', '.join(failed)}[/]")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

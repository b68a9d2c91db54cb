"""`make demo`'s wall time, as the README promises it (at most 25 s on an idle 2-core machine).

The demo runs in its own process exactly as `make demo` runs it (`python -m acrsync.demo`), output
discarded. The floor is one start-up of the `acrsync` command (`python -m acrsync --version`) measured in
the same run: the ratio says how many CLI start-ups the whole demo costs, whatever the machine's load.
The CPU time (user + system, of the demo and its children) is reported too, since wall time on a
shared machine mostly measures the neighbours.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from bench.harness import Row, Target, median

ROOT = Path(__file__).resolve().parents[1]
README_PROMISE = Target("<=", 25.0)


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(ROOT / "shared"), str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "ALIBABA_CLOUD_ECS_METADATA_DISABLED": "true"}


def _run(args: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds of one child process (CPU includes its own children: localcloud, the
    functions)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(args, cwd=ROOT, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   check=True,
                   timeout=600)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run(runs: int = 1) -> tuple[list[Row], dict]:
    startup = median(_run([sys.executable, "-m", "acrsync", "--version"])[0] for _ in range(3))
    walls, cpus = [], []
    for _ in range(runs):
        wall, cpu = _run([sys.executable, "-m", "acrsync.demo"])
        walls.append(wall)
        cpus.append(cpu)
    wall, cpu = median(walls), median(cpus)
    rows = [
        Row("demo", "make demo wall time", wall, "s", target=README_PROMISE,
            note=f"median of {runs} run(s); the README promises <= 25 s on an idle 2-core machine"),
        Row("demo", "make demo wall time / one `acrsync --version` start-up", wall, "s", floor=startup,
            note="how many CLI start-ups the demo costs; no target set"),
        Row("demo", "make demo CPU time (user + system, with localcloud and the functions)", cpu, "s",
            note="no target set"),
    ]
    return rows, {"wall_s": walls, "cpu_s": cpus, "startup_s": startup, "load_avg": os.getloadavg()}

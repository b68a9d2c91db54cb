"""``python -m localcloud --scenario PATH [--port N] [--clock wall|manual]``: serve until SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import sys

from localcloud.scenario import ScenarioError
from localcloud.server import serve_forever


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localcloud", description=__doc__)
    parser.add_argument("--scenario", required=True, help="scenario YAML (e.g. scenarios/demo.yaml)")
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free port)")
    parser.add_argument("--clock", choices=("wall", "manual"), default="wall",
                        help="wall: real time (default); manual: moves only by POST /_localcloud/clock")
    parser.add_argument("--ots-state-file", default=None,
                        help="keep Tablestore tables in this file so they survive a restart")
    args = parser.parse_args(argv)
    try:
        return serve_forever(args.scenario, port=args.port, clock=args.clock,
                             ots_state_file=args.ots_state_file)
    except ScenarioError as exc:
        print(f"localcloud: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"localcloud: cannot listen on 127.0.0.1:{args.port}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

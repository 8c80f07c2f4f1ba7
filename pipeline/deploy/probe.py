"""The pipeline containers' healthcheck: the local stack's probes, run from the container.

    python -m pipeline.deploy.probe http://127.0.0.1:8101/healthz
    python -m pipeline.deploy.probe http://127.0.0.1:8010/metrics \
        --metric gameday_feed_primary_connected=1
    python -m pipeline.deploy.probe --grpc 127.0.0.1:8040

Exit 0 when healthy; 1, with the reason on stderr, when not.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from pipeline.deploy import health


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline.deploy.probe")
    parser.add_argument("url", help="http URL, or a gRPC HOST:PORT with --grpc")
    parser.add_argument("--grpc", action="store_true", help="a gRPC server accepts a channel")
    parser.add_argument("--metric", metavar="NAME=VALUE", help="an unlabelled sample to expect")
    parser.add_argument("--timeout-s", type=float, default=2.0)
    args = parser.parse_args(argv)
    if args.grpc:
        from pipeline.corrections import ready

        probe = ready(args.url, timeout_s=args.timeout_s)
    elif args.metric:
        name, sep, value = args.metric.partition("=")
        if not sep:
            parser.error("--metric takes NAME=VALUE")
        probe = health.metric(args.url, name, want=float(value), timeout_s=args.timeout_s)
    else:
        probe = health.http_ok(args.url, timeout_s=args.timeout_s)
    reason = asyncio.run(probe)
    if reason is not None:
        print(reason, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""python -m lab.datera --config <file.json>: the lab's Datera cluster (API + data plane)."""
import argparse
import asyncio
import logging
import sys

from .server import Config, ConfigError, serve


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lab.datera",
                                     description="The Vancouver lab's Datera DSP: REST API and data plane")
    parser.add_argument("--config", required=True, help="config JSON (see lab/datera/server.py)")
    parser.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    args = parser.parse_args(argv)
    logging.basicConfig(stream=sys.stderr, level=args.log_level,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = Config.load(args.config)
    except ConfigError as e:
        print(f"lab.datera: {e}", file=sys.stderr)
        return 2
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:   # uvloop is pinned in requirements.txt; plain asyncio still works
        runner = asyncio.run
    try:
        runner(serve(config))
    except ConfigError as e:
        print(f"lab.datera: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"lab.datera: cannot listen: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

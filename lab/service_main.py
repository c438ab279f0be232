"""The command line every lab service process shares: `python -m lab.<service> --config F`.

Loads the service's config, runs its asyncio server on uvloop, and turns the expected
failures (bad config, address in use) into one line on stderr and an exit status the
supervisor reports.
"""
import argparse
import asyncio
import sys

from lab import logsetup


def run_service(prog: str, description: str, load_config, serve, config_error: type,
                argv=None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--config", required=True, help="the service's config JSON")
    parser.add_argument("--log-level", default="INFO",
                        choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    args = parser.parse_args(argv)
    logsetup.configure(args.log_level, config_path=args.config)   # masked: lab/logsetup.py
    try:
        import uvloop
        runner = uvloop.run
    except ImportError:   # uvloop is pinned in requirements.txt; plain asyncio still works
        runner = asyncio.run
    try:
        runner(serve(load_config(args.config)))
    except config_error as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"{prog}: cannot listen: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0

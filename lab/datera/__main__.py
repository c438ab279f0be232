"""python -m lab.datera --config <file.json>: the lab's Datera cluster (API + data plane)."""
import sys

from lab.service_main import run_service

from .config import Config, ConfigError
from .server import serve

if __name__ == "__main__":
    sys.exit(run_service("lab.datera", "The Vancouver lab's Datera DSP: REST API and data plane",
                         Config.load, serve, ConfigError))

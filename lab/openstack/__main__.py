"""python -m lab.openstack --config <file.json>: one OpenStack cloud, every service in it."""
import sys

from lab.service_main import run_service

from .config import CloudConfig, ConfigError
from .server import serve

if __name__ == "__main__":
    sys.exit(run_service("lab.openstack", "One of the Vancouver lab's OpenStack clouds",
                         CloudConfig.load, serve, ConfigError))

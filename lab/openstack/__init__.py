"""The lab's OpenStack clouds (Mitaka, Newton, Pike): config.py, cloud.py (services, catalog), server.py (HTTP on lab/http), api.py (what handlers see)."""

"""The lab's OpenStack clouds (Mitaka, Newton, Pike): see framework.py."""

"""Logging of every lab process (supervisor, services, Kubernetes node): stderr, which the
supervisor writes to <run dir>/logs/<name>.log, with nothing secret in it.

A lab log once held the Datera admin password: a pod thread died of a dfs_sdk error whose
text is the request body (`PUT /login {'name': ..., 'password': ...}`) and Python printed the
traceback. So here every record is masked after it is formatted, traceback included
(clients/masking.py: registered values and the values of secret fields), an uncaught
exception of a thread or of the process is printed through the same masking, and the secret
values of the process's config file are registered before anything runs.
"""
import json
import logging
import sys
import threading
import traceback
from pathlib import Path

from clients.masking import is_secret_field, mask_text, register_secret


class MaskingFormatter(logging.Formatter):
    """A Formatter whose whole output (message, traceback, stack) is masked."""

    def format(self, record: logging.LogRecord) -> str:
        return mask_text(super().format(record))


def _print_masked(exc_type, exc, tb, where: str = "") -> None:
    text = "".join(traceback.format_exception(exc_type, exc, tb))
    try:
        sys.stderr.write(f"Exception in {where}:\n" if where else "")
        sys.stderr.write(mask_text(text))
        sys.stderr.flush()
    except (OSError, ValueError):   # stderr closed at shutdown
        pass


def _thread_hook(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit:
        return
    name = args.thread.name if args.thread is not None else "a thread"
    _print_masked(args.exc_type, args.exc_value, args.exc_traceback, f"thread {name}")


def register_config_secrets(doc) -> None:
    """Registers every string under a secret field (`password`, `chap_secret`, ...) of a
    parsed config, at any depth, so its value is masked wherever it shows up."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            if isinstance(v, str) and is_secret_field(k):
                register_secret(v)
            else:
                register_config_secrets(v)
    elif isinstance(doc, list):
        for v in doc:
            register_config_secrets(v)


def configure(level="INFO", fmt: str = "%(asctime)s %(levelname)s %(name)s: %(message)s",
              config_path: str | None = None) -> None:
    """Root logging to stderr, masked; masked uncaught exceptions; the secrets of the JSON
    config at `config_path` (if readable) registered."""
    if config_path:
        try:
            register_config_secrets(json.loads(Path(config_path).read_text()))
        except (OSError, ValueError):
            pass   # the component reports its unreadable config itself
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(MaskingFormatter(fmt))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    sys.excepthook = _print_masked
    threading.excepthook = _thread_hook

"""What a failed lab end-to-end case prints so that CI's output alone explains it: the tail of
the lab's component logs and of the inner run's output, bounded and with the lab's secrets
masked (the lab's run dir goes with CI's temp dirs; issue 13's vCenter kill -9 case failed
twice in CI with nothing left to read).

Where things are: `python -m lab` keeps each component's stdout+stderr (a restart appends) in
<run dir>/logs/<component>.log and its own in logs/supervisor.log (lab/supervisor.py); the
inner run's output is tee'd to <out>/output.txt by outage_run.start_demo.

Secrets: every value of a secret field (fixtures.reporting.masking.is_secret_field: password,
chap_secret, token, ...) in the lab's target files and component configs is registered and
masked, as are `name=value` secret fields written out in the text (mask_text)."""
from __future__ import annotations

import json
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from fixtures.reporting.masking import is_secret_field, mask_text, register_secret
from lab.runfiles import last_lines, log_file
from tests.support.labcli import LabCli

LOG_LINES = 60          # per component log
SUPERVISOR_LINES = 20
OUTPUT_LINES = 60       # of the inner run's output's end
FAILURE_LINES = 80      # of the inner run's failures section
LINE_CHARS = 400        # a longer line (a JSON body, a fio result) is cut
MAX_SECRET_FILE = 1 << 20   # bytes: target and config files are small; skip anything larger
_RESULT = re.compile(r"^\[gw\d+\] (FAILED|ERROR) ")
_SECTION = re.compile(r"^=+ (FAILURES|ERRORS) =+$")


def _secret_values(doc, out: set[str]) -> None:
    """Values of secret fields anywhere in a parsed JSON/YAML document."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            if is_secret_field(k) and isinstance(v, (str, int)) and not isinstance(v, bool):
                out.add(str(v))
            else:
                _secret_values(v, out)
    elif isinstance(doc, list):
        for v in doc:
            _secret_values(v, out)


def lab_secrets(lab: LabCli) -> set[str]:
    """Secret values of the lab: secret fields of the target's *.yaml/*.json/*.env files and
    of each component's config (<run dir>/<component>/*.json). Unreadable files are skipped:
    the masking of `name=value` fields in the text still applies."""
    files = [p for pattern in ("*.yaml", "*.yml", "*.json", "*.env")
             for p in lab.target.parent.glob(pattern)] + list(lab.run_dir.glob("*/*.json"))
    found: set[str] = set()
    for p in files:
        try:
            if p.stat().st_size > MAX_SECRET_FILE:
                continue
            text = p.read_text()
            if p.suffix == ".env":
                for line in text.splitlines():
                    key, sep, value = line.partition("=")
                    if sep and is_secret_field(key.strip()) and value.strip():
                        found.add(value.strip())
            else:
                _secret_values(json.loads(text) if p.suffix == ".json" else yaml.safe_load(text),
                               found)
        except (OSError, ValueError, yaml.YAMLError):
            continue
    return found


def _output_parts(lines: list[str]) -> list[str]:
    """The inner run's failing result lines, its failures/errors section (bounded) and its
    last OUTPUT_LINES lines."""
    parts: list[str] = []
    failed = [ln for ln in lines if _RESULT.match(ln)]
    if failed:
        parts += ["-- its failed/error results --", *failed[:20]]
    start = next((i for i, ln in enumerate(lines) if _SECTION.match(ln)), None)
    if start is not None and start < len(lines) - OUTPUT_LINES:
        section = lines[start:start + FAILURE_LINES]
        parts += [f"-- its {lines[start].strip('= ')} section (first {len(section)} lines) --",
                  *section]
    parts += [f"-- its last {min(len(lines), OUTPUT_LINES)} lines --", *lines[-OUTPUT_LINES:]]
    return parts


def evidence(lab: LabCli, components: tuple[str, ...], output: Path | None = None) -> str:
    """The text a failed case prints: per component the last LOG_LINES lines of its log, the
    supervisor's last SUPERVISOR_LINES, and the inner run's output (`output`: its tee'd
    file; see _output_parts). Secrets masked (module doc)."""
    for s in lab_secrets(lab):
        register_secret(s)
    parts = [f"==== lab evidence (run dir {lab.run_dir}) ===="]
    for name in components:
        parts += [f"-- logs/{name}.log, last {LOG_LINES} lines --",
                  *last_lines(log_file(lab.run_dir, name), LOG_LINES)]
    parts += [f"-- logs/supervisor.log, last {SUPERVISOR_LINES} lines --",
              *last_lines(log_file(lab.run_dir, "supervisor"), SUPERVISOR_LINES)]
    if output is not None:
        parts.append(f"-- the inner run's output ({output}) --")
        try:
            parts += _output_parts(output.read_text(errors="replace").splitlines())
        except OSError as e:
            parts.append(f"(not readable: {e.strerror})")
    parts.append("==== end of lab evidence ====")
    return mask_text("\n".join(ln if len(ln) <= LINE_CHARS else ln[:LINE_CHARS] + " [cut]"
                               for ln in parts))


@contextmanager
def evidence_on_failure(lab: LabCli, components: tuple[str, ...],
                        output: Path | None = None) -> Iterator[None]:
    """On a failure inside (an exception, pytest.fail and pytest-timeout's included; not a
    skip or Ctrl-C): the evidence printed, which pytest shows with the failure as its
    captured stdout; then the exception goes on as it was."""
    try:
        yield
    except (KeyboardInterrupt, SystemExit, pytest.skip.Exception):
        raise
    except BaseException:
        print(evidence(lab, components, output))
        raise

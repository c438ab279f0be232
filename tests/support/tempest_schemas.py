"""Response bodies validated by the pinned Tempest venv's own code (conformance/
validate_schemas.py): Tempest's response schemas, or a JSON schema a service serves itself.
Tempest is not in the project's venv (it pins a whole OpenStack stack)."""
import json
import subprocess

import pytest

from conformance import tempest_venv

VALIDATOR = "conformance/validate_schemas.py"


def tempest_python():
    python = tempest_venv() / "bin" / "python"
    if not (tempest_venv() / ".installed").exists():
        pytest.skip(f"no Tempest venv at {tempest_venv()}: `make tempest-venv` makes it "
                    "(the validation runs Tempest's own code)")
    return python


def validate(items: list[dict]) -> list[dict]:
    """[{label, schema | json_schema, status, body}] -> the ones refused, with the reason."""
    r = subprocess.run([str(tempest_python()), VALIDATOR], input=json.dumps(items),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout)

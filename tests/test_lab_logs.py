"""Lab logs hold no secret (the trial found the Datera admin password in kubernetes.log): every
lab process masks its log records, tracebacks included, and its uncaught exceptions
(lab/logsetup.py)."""
import logging
import subprocess
import sys
from pathlib import Path

from clients.dfs_compat import dexc

PASSWORD = "pw-secret-7f3a"
CHAP = "chap-secret-91bc"
BODY = (f"[REQUEST]: POST /app_instances\n{{'storage_instances': [{{'auth': {{'type': 'chap', "
        f"'target_user_name': 'u', 'target_pswd': '{CHAP}'}}}}], 'password': '{PASSWORD}'}}\n")


def test_a_lab_process_logs_no_secret_of_a_dying_thread_or_a_logged_traceback(tmp_path):
    """The trial's path: a pod thread died of a dfs_sdk error whose text is the login body and
    Python printed it to the component's log. Now both an uncaught thread exception and a
    logged traceback go through the masking, and the config's secrets are registered."""
    config = tmp_path / "config.json"
    config.write_text('{"datera": {"username": "admin", "password": "%s"}}' % "s3cr3t-cfg-pw")
    code = f"""
import logging, threading
from lab import logsetup
from clients.dfs_compat import dexc
logsetup.configure("INFO", config_path={str(config)!r})
body = "[REQUEST]: PUT /login\\n{{'name': 'admin', 'password': {PASSWORD!r}}}\\n503 Service Unavailable"
def die():
    raise dexc.Api503RetryError(body, {{"http": 503}})
t = threading.Thread(target=die, name="pod-writer"); t.start(); t.join()
try:
    die()
except Exception:
    logging.getLogger("lab.kubernetes.pods").exception("NodeStage failed; config pw s3cr3t-cfg-pw")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, cwd=str(Path(__file__).parents[1]))
    assert out.returncode == 0, out.stderr
    log = out.stderr
    assert "Api503RetryError" in log and "pod-writer" in log and "NodeStage failed" in log
    assert PASSWORD not in log and "s3cr3t-cfg-pw" not in log, log
    assert "'password': '***'" in log and "config pw ***" in log


def test_the_masking_formatter_masks_the_traceback_too():
    from lab.logsetup import MaskingFormatter
    try:
        raise dexc.Api503RetryError(BODY + "503 Service Unavailable", {"http": 503})
    except dexc.ApiError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "login failed", (),
                                   sys.exc_info())
    text = MaskingFormatter("%(message)s").format(record)
    assert "login failed" in text and "Traceback" in text
    assert PASSWORD not in text and CHAP not in text


def test_the_run_dir_is_made_private_and_so_is_what_the_lab_writes_in_it(tmp_path):
    """A run dir of an earlier lab (0755, a 0644 log) becomes 0700 and 0600; what is created
    after make_private (the supervisor, its components: umask 077) is its owner's only."""
    import os
    import stat

    from lab import runfiles
    run_dir = tmp_path / "vancouver-lab-127.121"
    (run_dir / "logs").mkdir(parents=True)
    run_dir.chmod(0o755)
    old_log = run_dir / "logs" / "kubernetes.log"
    old_log.write_text("old\n")
    old_log.chmod(0o644)
    saved = os.umask(0o022)
    try:
        runfiles.make_private(run_dir)
        new = run_dir / "datera" / "state.xml"
        new.parent.mkdir()
        new.write_text("<chap/>")
        child = subprocess.run(["sh", "-c", f"umask; echo x > {run_dir / 'child.txt'}"],
                               capture_output=True, text=True, check=True)
    finally:
        os.umask(saved)
    mode = lambda p: stat.S_IMODE(p.stat().st_mode)  # noqa: E731
    assert mode(run_dir) == 0o700 and mode(run_dir / "logs") == 0o700
    assert mode(old_log) == 0o600
    assert mode(new.parent) == 0o700 and mode(new) == 0o600
    assert child.stdout.strip() == "0077" and mode(run_dir / "child.txt") == 0o600


def test_the_chaos_rules_file_is_its_owners_only_whatever_the_umask(tmp_path):
    import os
    import stat

    from lab import chaos
    saved = os.umask(0o022)   # `python -m lab chaos` from a user's shell
    try:
        chaos.write_rules(chaos.control_path(tmp_path), [chaos.Rule("errors", "datera",
                                                                    status=503, rate=0.5)])
    finally:
        os.umask(saved)
    assert stat.S_IMODE(chaos.control_path(tmp_path).stat().st_mode) == 0o600

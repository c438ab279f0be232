"""fixtures/reporting/terminal.py: the operator's live table (rich) and its plain-line form
for logs, rendered from the run state; inner runs show where it goes on screen."""
from __future__ import annotations

import io

from rich.console import Console

from fixtures.dashboard.state import RunState
from fixtures.reporting import events as ev
from fixtures.reporting.terminal import plain_lines, scenario_table, worker_table
from tests.support.inner_run import release_all, start as _inner

NID = "scenarios/openstack/test_image_rotation.py::test_rotate[Vancouver-ON]"


def _state() -> RunState:
    state = RunState()
    state(ev.TestResult(outcome="passed", duration_s=12.5, nodeid=NID, worker="gw0"))
    state(ev.TestResult(outcome="failed", duration_s=3.0, nodeid=NID, worker="gw0"))
    state(ev.StepStart(name="upload image", step=0, nodeid=NID, worker="gw1"))
    return state


def test_rich_tables_show_counts_rate_last_duration_and_current_step():
    snap = _state().snapshot()
    out = io.StringIO()
    console = Console(file=out, width=140, color_system=None)
    console.print(scenario_table(snap))
    console.print(worker_table(snap))
    text = out.getvalue()
    row = next(line for line in text.splitlines() if "image_rotation" in line)
    assert row.split()[:4] == ["image_rotation", "2", "1", "1"], row
    assert "3.0" in row and "Vancouver-ON" in row
    worker = next(line for line in text.splitlines() if "gw1" in line)
    assert "rotate[Vancouver-ON]" in worker and "upload image" in worker


def test_a_fresh_row_shows_no_rate_before_its_first_iteration_ended():
    """Counted when pytest prints the result line; the rate and the duration come with the
    end of its teardown. A new user saw `1 1 0 0.0 -`: a rate of 0.0 beside a pass."""
    state = RunState()
    state(ev.TestOutcome(outcome="passed", nodeid=NID, worker="gw0"))
    out = io.StringIO()
    Console(file=out, width=140, color_system=None).print(scenario_table(state.snapshot()))
    row = next(line for line in out.getvalue().splitlines() if "image_rotation" in line)
    assert row.split()[:6] == ["image_rotation", "1", "1", "0", "-", "-"], row


def test_plain_lines_name_scenario_figures_and_worker_steps():
    lines = plain_lines(_state().snapshot())
    assert lines[0].startswith("[live] image_rotation: 2 iterations, 1 passed, 1 failed, ")
    assert lines[0].endswith("last 3.0 s")
    assert any(line.startswith(f"[live] gw1: {NID} > upload image (") for line in lines)


def _booth_minute():
    """The recorded minute (every happening, an outage, the performance piece) plus five
    busy workers with long steps and OpenStack params, as on a booth run."""
    import time
    from tests.support.recorded_run import recorded_state
    state, _, _ = recorded_state(time.time())
    steps = {"gw0": ("scenarios/test_performance.py::test_performance",
                     "wait until no QoS check is measuring (the array to ourselves)"),
             "gw2": ("scenarios/openstack/test_server_lifecycle.py::test_server_lifecycle[newton]",
                     "retype both volumes to gold while fio runs and the guest writes"),
             "gw3": ("scenarios/test_tenancy.py::test_tenancy[Vancouver-ON]", "boot"),
             "gw4": ("scenarios/openstack/test_volume_features.py::test_volume_features[pike]",
                     "snapshot [consistent] and clone")}
    for worker, (nid, step) in steps.items():
        state(ev.StepStart(name=step, step=0, nodeid=nid, worker=worker))
    return state


def test_live_table_fits_an_80_column_terminal_one_line_per_row():
    snap = _booth_minute().snapshot()
    out = io.StringIO()
    console = Console(file=out, width=80, color_system=None)
    console.print(scenario_table(snap))
    console.print(worker_table(snap))
    lines = out.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80, lines
    assert len(lines) == 2 + len(snap["scenarios"]) + len(snap["workers"]), lines
    assert lines[0].split() == ["scenario", "iter", "pass", "fail", "outage", "/min", "last",
                                "s", "running"], lines[0]
    row = {line.split()[0]: line.split() for line in lines}
    assert row["server_lifecycle"][1:5] == ["1", "0", "0", "1"], row["server_lifecycle"]
    assert row["gw2"][1] == "server_lifecycle[newton]"   # brackets are text, not markup
    assert row["gw4"][1:4] == ["volume_features[pike]", "snapshot", "[consistent]"]
    assert row["gw0"][-2].endswith("…"), row["gw0"]       # a long step is cut, not wrapped


def test_the_live_table_leaves_room_for_the_terminals_ctrl_c_echo():
    """The terminal echoes "^C" after the table's last row; a row filling the width wrapped,
    and Live, erasing one line too few, left the table's title in the scrollback at every
    Ctrl-C. The live view's console is the terminal's width less ECHO_ROOM."""
    from fixtures.reporting.terminal import ECHO_ROOM, EchoRoomConsole
    snap = _booth_minute().snapshot()
    out = io.StringIO()
    console = EchoRoomConsole(file=out, force_terminal=True, color_system=None,
                              _environ={"COLUMNS": "100", "LINES": "40"})
    assert console.width == 100 - ECHO_ROOM
    console.print(worker_table(snap))
    assert max(len(line) for line in out.getvalue().splitlines()) == 100 - ECHO_ROOM


def test_plain_lines_stay_readable_with_happenings_and_outages():
    from fixtures.reporting.terminal import plain_event_lines
    from tests.support.recorded_run import PERF
    state = _booth_minute()
    snap = state.snapshot()
    events, last = plain_event_lines(snap, 0)
    # the happenings and the QoS change asked by the run, once each, oldest first; outage
    # and failure lines are the outage plugin's and pytest's own
    assert [e.split(" ", 3)[3] for e in events] == [
        f["text"] for f in snap["feed"] if f["kind"] not in ("outage", "result", "failure")]
    assert any(e.endswith("gw1 volume retyped to a higher QoS tier: "
                          "vancouver-7e17f8-gw1-data-1 (mitaka, bronze -> gold)")
               for e in events), events
    assert all(e.startswith("[event] ") and "\n" not in e for e in events)
    assert last == snap["feed"][-1]["n"]
    assert plain_event_lines(state.snapshot(), last) == ([], last)  # nothing twice
    state(ev.Happening(what="pod_removed", subject="ns/fio", nodeid=PERF, worker="gw3"))
    assert [e.split(" ", 3)[3] for e in plain_event_lines(state.snapshot(), last)[0]] == [
        "pod removed: ns/fio"]
    lines = plain_lines(snap)
    assert "[live] server_lifecycle: 1 iterations, 0 passed, 0 failed, 1 outage, " \
        "0.2/min, last 41.0 s" in lines
    state(ev.StepStart(name="first step", step=0, nodeid=NID, worker="gw5"))
    fresh = next(x for x in plain_lines(state.snapshot()) if "image_rotation" in x)
    assert fresh.endswith("last -"), fresh  # no iteration yet: no duration to show


def test_plain_lines_say_how_many_feed_lines_a_long_gap_skipped():
    from fixtures.reporting.terminal import plain_event_lines
    state = RunState()
    for i in range(100):
        state(ev.Happening(what="image_created", subject=f"img-{i}", nodeid=NID, worker="gw0"))
    events, last = plain_event_lines(state.snapshot(), 0)
    assert events[0] == "[event] (40 earlier feed lines not shown: see the dashboard or " \
        "the report)"
    assert len(events) == 61 and events[-1].endswith("image created: img-99") and last == 100


def test_not_a_terminal_gives_plain_lines_after_the_where_line(tmp_path):
    release_all(tmp_path)
    proc = _inner(tmp_path, "-n", "2", "--live-view", "plain")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    lines = out.splitlines()
    assert lines[0].startswith("Vancouver demo: reports "), lines[0]
    assert lines[0].endswith("reports/index.html")
    assert "[live] live: 2 iterations, 2 passed, 0 failed, " in out
    assert "\x1b[" not in out  # nothing redrawn in a log


def test_rich_view_draws_the_table_on_a_terminal(tmp_path):
    release_all(tmp_path)
    proc = _inner(tmp_path, "-n", "2", "--live-view", "rich")
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, out
    assert out.splitlines()[0].startswith("Vancouver demo: reports ")
    assert "current step" in out and "iter" in out and "/min" in out
    assert "2 passed" in out  # pytest's own summary still comes after the table


def test_live_every_sets_how_often_a_log_gets_the_live_lines(tmp_path):
    """--live-every 1s: the steps the workers are in show while they hold them (the default
    30 s would print them only at the end of this run); tests aiming a fault at a step read
    them (tests/support/outage_run.py)."""
    import threading

    from fixtures.waiters import wait_until
    proc = _inner(tmp_path, "-n", "2", "--live-view", "plain", "--live-every", "1s")
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stdout.readline, "")),
                              daemon=True)
    reader.start()
    try:
        wait_until(lambda: any(ln.startswith("[live] gw") and " > " in ln for ln in lines)
                   or proc.poll() is not None, 60, "a [live] line naming a held step", 0.1)
        assert any(ln.startswith("[live] gw") and " > " in ln for ln in lines), "".join(lines)
    finally:
        release_all(tmp_path)
        proc.wait(timeout=120)
        reader.join(10)
    assert proc.returncode == 0, "".join(lines)[-3000:]


def test_a_bad_live_every_is_one_line(tmp_path):
    release_all(tmp_path)
    proc = _inner(tmp_path, "--live-every", "soon")
    out, _ = proc.communicate(timeout=120)
    errors = [ln for ln in out.splitlines() if ln.startswith("ERROR")]
    assert proc.returncode == 4 and errors == [
        "ERROR: --live-every soon: expected a positive time such as 5s or 1m"], out
    assert "usage:" not in out


def _on_a_pty(tmp_path, *args: str) -> tuple[int, bytes]:
    """The live suite (tests released at once) run on a pseudo-terminal, as on the booth's
    screen: (exit status, every byte it wrote)."""
    import os
    import pty
    import subprocess
    import sys

    from tests.support.inner_run import CONFTEST, DEMO_YAML, LIVE_TEST, env
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "demo.yaml").write_text(DEMO_YAML)
    (tmp_path / "test_live.py").write_text(LIVE_TEST)
    release_all(tmp_path)
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                             "--demo-config", "demo.yaml", "--demo-profile", "ci", *args],
                            cwd=tmp_path, env=env(), stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    try:
        while chunk := os.read(master, 65536):
            out += chunk
    except OSError:   # EIO: the last writer closed the terminal
        pass
    finally:
        os.close(master)
    return proc.wait(timeout=120), out


def test_pytest_lines_pass_the_live_table_verbatim(tmp_path):
    """A new user's screen showed ` [32mPASSED round 1[0m scenarios/...` twice, the [gwN]
    prefix and the [mitaka] id gone: rich's FileProxy printed pytest's flushed partial line
    as markup. Each result line must come once, byte for byte as pytest wrote it."""
    import re
    code, out = _on_a_pty(tmp_path, "-n", "2", "--count=0", "--duration", "2s",
                          "--live-view", "rich", "--color=yes")
    assert code == 0, out[-3000:]
    assert b"current step" in out   # the table was live
    for n in (0, 1):
        line = (rb"\[gw\d\] \x1b\[32mPASSED round 1\x1b\[0m test_live\.py::test_live\[%d\] \r\n"
                % n)
        found = re.findall(rb"(?:^|\n|\x1b\[2K)(" + line + rb")", out)
        assert len(found) == 1, out[-3000:]
        assert out.count(b"PASSED round 1\x1b[0m test_live.py::test_live[%d] " % n) == 1
    assert b"\x1b\x1b" not in out and b"\x1b[1m[\x1b[0m" not in out


def test_the_stop_line_goes_above_the_live_table(tmp_path):
    """The stop line was written below the table (past it, to the terminal): the next redraw
    erased upwards from there and left the table's old headline torn above the stop line.
    Now it is printed where the table was erased, the table redrawn under it."""
    import os
    import pty
    import select
    import sys
    import time

    from tests.support.inner_run import CONFTEST, DEMO_YAML, LIVE_TEST, env
    (tmp_path / "conftest.py").write_text(CONFTEST)
    (tmp_path / "demo.yaml").write_text(DEMO_YAML)
    (tmp_path / "test_live.py").write_text(LIVE_TEST)
    pid, fd = pty.fork()
    if pid == 0:   # the child: pytest on the pty, as from a terminal
        os.chdir(tmp_path)
        os.execve(sys.executable, [sys.executable, "-m", "pytest", "-p", "no:cacheprovider",
                                   "--demo-config", "demo.yaml", "--demo-profile", "ci",
                                   "-n", "2", "--count=0", "--live-view", "rich"], env())
    out, typed, deadline = b"", False, time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if select.select([fd], [], [], 0.2)[0]:
                try:
                    chunk = os.read(fd, 65536)
                except OSError:   # EIO: the run ended
                    break
                if not chunk:
                    break
                out += chunk
            if not typed and b"holding 0" in out and b"holding 1" in out:
                os.write(fd, b"\x03")   # Ctrl-C, as typed: to the whole process group
                typed = True
            if typed and b"stopping" in out:
                release_all(tmp_path)
    finally:
        release_all(tmp_path)
        status = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
        os.close(fd)
    assert status == 0, out[-3000:]
    line = b"[vancouver] Ctrl-C: stopping: waiting for 2 running iterations to finish"
    assert out.count(line) == 1, out[-3000:]
    before, after = out.split(line)
    assert before.endswith(b"\x1b[2K\r\n"), before[-300:]   # in the table's erased place
    assert after.split(b"\r\n", 2)[1].startswith(b"\x1b[1;36mVancouver demo: "), after[:300]

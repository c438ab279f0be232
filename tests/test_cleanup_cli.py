"""`python -m fixtures.cleanup` (make clean-demo) without a target to sweep: with no lab
running and no target named there is nothing to clean (the embedded lab's state went with
it, and `lab up` wipes it), so one line and status 0, as after `make demo` ended and took its
lab along; a target the user named that does not exist stays an error (status 2)."""
import pytest

from fixtures import cleanup, target as target_mod
from lab import topology


@pytest.fixture
def no_lab(tmp_path, monkeypatch):
    monkeypatch.delenv("VANCOUVER_TARGET", raising=False)
    monkeypatch.setattr(target_mod, "lab_target_path",
                        lambda: tmp_path / "no-lab" / "target" / "target.yaml")


@pytest.mark.parametrize("argv", [[], ["--delete"]])
def test_no_lab_and_no_target_is_nothing_to_clean(no_lab, capsys, argv):
    assert cleanup.main(argv) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert out == (f"cleanup: no lab running on net {topology.NET}: nothing to clean; pass "
                   "--target for a real cluster\n")


def test_an_empty_vancouver_target_is_unset(no_lab, capsys, monkeypatch):
    monkeypatch.setenv("VANCOUVER_TARGET", "")
    assert cleanup.main([]) == 0
    assert "nothing to clean" in capsys.readouterr().out


def test_a_named_target_that_does_not_exist_is_an_error(no_lab, tmp_path, capsys, monkeypatch):
    missing = tmp_path / "missing.yaml"
    assert cleanup.main(["--target", str(missing)]) == 2
    assert capsys.readouterr().err == f"cleanup: --target {missing}: no such file\n"
    monkeypatch.setenv("VANCOUVER_TARGET", str(missing))
    assert cleanup.main([]) == 2
    assert capsys.readouterr().err == f"cleanup: VANCOUVER_TARGET={missing}: no such file\n"

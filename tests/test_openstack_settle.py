"""The teardown's wait for a volume's transition (fixtures/openstack/resources.settle_volume):
a volume that keeps changing is waited for, one that has not changed for `stuck_s` is taken
as stuck at once (a cinder-volume that died in the transition; CI: a 300 s wait overran the
iteration's timeout and leaked the volume), an image copy (`downloading`) never counts as
stuck. Against a scripted block-storage proxy; the lab's Cinder case is
test_openstack_cinder.py::test_teardown_deletes_a_volume_stuck_in_a_transition."""
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

from fixtures.openstack.resources import settle_volume


class ScriptedVolumes:
    """find_volume answers the next state of `states` per call (the last one repeats)."""

    def __init__(self, *states, created_at=None):
        self.states, self.calls, self.created_at = list(states), 0, created_at

    def find_volume(self, volume_id, ignore_missing=False):
        state = self.states[min(self.calls, len(self.states) - 1)]
        self.calls += 1
        if state is None:
            return None
        status, updated = state
        return SimpleNamespace(id=volume_id, status=status, migration_status=None,
                               updated_at=updated, created_at=self.created_at)


def test_an_unchanged_transition_is_stuck_after_stuck_s_not_settle_s():
    bs = ScriptedVolumes(("extending", "t0"))
    # settle_s is an hour: only the stuck rule can end this wait within pytest's timeout
    vol = settle_volume(bs, "v", settle_s=3600, stuck_s=0.6)
    assert vol.status == "extending"
    assert bs.calls >= 2   # it looked again before calling it stuck


def test_one_the_cloud_last_changed_long_ago_is_stuck_at_the_first_look():
    # updated_at on the cloud's UTC clock: stuck for an hour, no need to watch it a minute
    an_hour_ago = (datetime.now(timezone.utc) - timedelta(hours=1)).strftime(
        "%Y-%m-%dT%H:%M:%S.%f")
    bs = ScriptedVolumes(("attaching", an_hour_ago))
    assert settle_volume(bs, "v", settle_s=3600, stuck_s=60).status == "attaching"
    assert bs.calls == 1
    # never updated since its create an hour ago (a `creating` one Mitaka left)
    bs = ScriptedVolumes(("creating", None), created_at=an_hour_ago)
    assert settle_volume(bs, "v", settle_s=3600, stuck_s=60).status == "creating"
    assert bs.calls == 1


def test_a_changing_transition_is_waited_for_until_it_ends():
    # each answer differs (a retype's migration moving on): never stuck, however small stuck_s
    bs = ScriptedVolumes(("retyping", "t1"), ("retyping", "t2"), ("retyping", "t3"),
                         ("available", "t4"))
    vol = settle_volume(bs, "v", settle_s=3600, stuck_s=0.2)
    assert vol.status == "available" and bs.calls == 4


def test_an_image_copy_is_never_stuck_only_bounded():
    bs = ScriptedVolumes(("downloading", "t0"))
    vol = settle_volume(bs, "v", settle_s=1.2, stuck_s=0.1)
    assert vol.status == "downloading"
    assert bs.calls >= 3   # it kept waiting past stuck_s (polls every 0.5 s) up to settle_s


def test_a_volume_gone_meanwhile_is_none():
    assert settle_volume(ScriptedVolumes(("creating", "t0"), None), "v", 3600, 60) is None

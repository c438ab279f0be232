"""A secret cut by pytest's saferepr (a traceback's locals: `repr[:i] + "..." + repr[-j:]`)
is masked too: a CI log showed the first 8 characters of a tenant user's password beside the
"..." of a truncated dict (fixtures/reporting/masking.py)."""
from _pytest._io.saferepr import saferepr

from fixtures.reporting import masking

SECRET = "pVlLWJ3Oq7e2Zt91"


def test_the_pieces_of_a_secret_a_truncated_repr_leaves_are_masked():
    masking.register_secret(SECRET)
    users = {f"/root/Vancouver-{t}": (f"vancouver_{t.lower()}", SECRET if t == "ON" else "x1y")
             for t in ("OM", "ON", "OP", "KU", "VM")}
    # a cut inside the secret, as pytest makes it at its default size
    for size in range(60, 160, 7):
        shown = saferepr(users, maxsize=size)
        masked = masking.mask_text(shown)
        for k in range(3, len(SECRET) + 1):
            assert SECRET[:k] not in masked and SECRET[-k:] not in masked, (size, masked)
    text = f"('vancouver_on', '{SECRET[:8]}...'vancouver_op', 'x1y')"
    assert masking.mask_text(text) == "('vancouver_on', '***...'vancouver_op', 'x1y')"
    assert masking.mask_text(f"...{SECRET[-5:]}')") == "...***')"
    assert masking.mask_text("waiting... done") == "waiting... done"

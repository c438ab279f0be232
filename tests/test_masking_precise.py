"""Field masking in captured text is precise: the value of a secret field is masked wherever it
is written out (also inside another field's value, as in `KeyError: 'password=...'`), while a
type annotation in a traceback's source line (`token: str`) is no value and stays readable.
Hypothesis properties: no secret value gets through, no annotation is garbled."""
import string

from hypothesis import given, settings, strategies as st

from clients.masking import MASK, _TYPE_NAMES, mask_text

SECRET_FIELDS = ("password", "chap_secret", "api_key", "token", "target_pswd", "X-Auth-Token",
                 "initiator_pswd", "san_password", "passphrase")
# a value as written out unquoted or quoted: no quote, space or delimiter inside
VALUE_CHARS = string.ascii_letters + string.digits + "!#$%&*+-./<=>?@^_|~"
values = st.text(VALUE_CHARS, min_size=1, max_size=40).filter(
    lambda v: v not in _TYPE_NAMES and not any(v.startswith(t + "[") for t in _TYPE_NAMES))
fields = st.sampled_from(SECRET_FIELDS)
plain_names = st.sampled_from(("name", "size", "KeyError", "ValueError", "entry", "fits",
                               "volume_id", "msg"))


@settings(max_examples=300, deadline=None)
@given(field=fields, value=values, form=st.sampled_from(
    ("{f}={v}", "{f}: {v}", "'{f}': '{v}'", '"{f}": "{v}"', "{f} = '{v}'",
     "KeyError: '{f}={v}'", "{{'name': 'admin', '{f}': '{v}'}}", "{n}: {f}={v}")),
       name=plain_names, prefix=st.sampled_from(("", "E   ", "  ", "login failed: ")))
def test_the_value_of_a_secret_field_never_gets_through(field, value, form, name, prefix):
    line = prefix + form.format(f=field, v=value, n=name)
    # the field's value, where it stood, is masked; the rest of the line is as it was
    assert mask_text(line) == prefix + form.format(f=field, v=MASK, n=name)


@settings(max_examples=200, deadline=None)
@given(field=fields, type_=st.sampled_from(sorted(_TYPE_NAMES)),
       shape=st.sampled_from(("{t}", "{t} | None", "Optional[{t}]", "{t} = None",
                              "dict[str, {t}]")),
       before=st.sampled_from(("self, fits: Callable[[dict], bool], ", "self, ", "")),
       after=st.sampled_from((", entry: dict) -> dict:", ") -> None:", ", *, ok: bool)")))
def test_a_type_annotation_in_a_source_line_is_left_as_it_is(field, type_, shape, before,
                                                              after):
    line = f"    def _wait({before}{field}: {shape.format(t=type_)}{after}"
    assert mask_text(line) == line


def test_the_trial_lines():
    src = "def _wait(self, fits: Callable[[dict], bool], token: str, entry: dict) -> dict:"
    assert mask_text(src) == src
    assert mask_text("token: str") == "token: str"
    assert mask_text("token: hunter2-abc") == "token: ***"
    assert mask_text("'target_pswd': 'c-h-a-p'") == "'target_pswd': '***'"
    # a secret parameter's default value in source is a value
    assert mask_text('def f(password: str = "hunter2"):') == 'def f(password: str = "***"):'
    assert mask_text("def f(password: Secret = None):") == "def f(password: Secret = None):"

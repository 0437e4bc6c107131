"""Property-based tests: any input to the config loader is a valid Config or a ConfigError."""

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vcam.config import Config, read_yaml, validate_config
from vcam.errors import ConfigError

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20), st.sampled_from(["blur", "off", "replace", "#00ff00", "1280x720", "cpu", "MJPG", "testpattern"]),
)
_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
_keys = st.sampled_from(["camera", "model", "effect", "output", "live", "other"])
_fields = st.sampled_from(["device", "size", "fps", "fourcc", "name", "path", "providers", "threads", "input_size",
                           "downsample_ratio", "mode", "blur_strength", "background", "color", "mirror", "target",
                           "backend", "alpha", "x"])
_configs = st.dictionaries(_keys, st.one_of(st.dictionaries(_fields, _values, max_size=6), _values), max_size=5)


@settings(max_examples=300, deadline=None)
@given(_configs)
def test_any_mapping_is_a_config_or_a_config_error(data: dict) -> None:
    try:
        cfg = validate_config(data, "fuzz.yaml")
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
        assert str(exc).startswith("fuzz.yaml: ")
        return
    assert isinstance(cfg, Config)


def _assert_config_or_error(f: Path) -> None:
    """Loading ``f`` gives a Config, or a ConfigError that names ``f`` and says what is wrong."""
    try:
        cfg = validate_config(read_yaml(f), str(f))
    except ConfigError as exc:
        assert exc.source == str(f) and exc.problems
        return
    assert isinstance(cfg, Config)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.text(max_size=200), st.builds(lambda d: yaml.safe_dump(d), _configs)))
def test_any_text_file_is_a_config_or_a_config_error(tmp_path: Path, text: str) -> None:
    f = tmp_path / "c.yaml"
    f.write_text(text, encoding="utf-8")
    _assert_config_or_error(f)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=300))
def test_any_bytes_are_a_config_or_a_config_error(tmp_path: Path, blob: bytes) -> None:
    f = tmp_path / "c.yaml"
    f.write_bytes(blob)
    _assert_config_or_error(f)


def test_yaml_tags_that_build_objects_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "c.yaml"
    f.write_text("effect: !!python/object/apply:os.system ['echo hacked']\n")
    try:
        read_yaml(f)
    except ConfigError as exc:
        assert exc.problems[0].startswith("not valid YAML at line 1, column 9: ")
    else:
        raise AssertionError("a python/object tag was accepted")

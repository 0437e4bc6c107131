"""``vcam config init`` and ``vcam config path``: the user's config file and the commented
default that ships inside the package.

The starter is ``vcam/setup/default.yaml``, a byte-for-byte copy of the repository's
``configs/default.yaml`` (the one source that is edited; ``tests/test_config_init.py`` fails,
naming the ``cp`` to run, when the two differ). It is package data, so a ``pip``/``pipx``
install has it without the repository.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from vcam.config import default_config_path
from vcam.errors import OutputError
from vcam.media.paths import write_new_file
from vcam.signals import hold_stop_signals

__all__ = ["STARTER", "init_config"]

STARTER = Path(__file__).with_name("default.yaml")


def init_config(*, force: bool = False, env: Mapping[str, str] | None = None) -> Path:
    """Write the commented default config to the user's config path
    (``$XDG_CONFIG_HOME/vcam/config.yaml``, ``~/.config/vcam/config.yaml`` by default) and
    return that path. An existing file (or a symlink, even a dangling one) is kept unless
    ``force``; raises :class:`OutputError` saying so.

    The text goes whole to a hidden temporary file beside the target, which is then put in
    place with :func:`~vcam.media.paths.link_no_replace` (or, with ``force``, renamed over the
    old file), with stop signals held meanwhile: the folder holds the old file or the complete
    new one, and no temporary file, whenever Ctrl-C comes.
    """
    path = default_config_path(env)
    exists = f"config {path} already exists; pass --force to replace it with the default (check it: vcam check-config)"
    if not force and (path.is_symlink() or path.exists()):
        raise OutputError(exists)  # early and clear; link_no_replace below is what guarantees it
    try:
        text = STARTER.read_bytes()
    except OSError as exc:
        raise OutputError(f"the default config {STARTER} cannot be read ({exc.strerror}); reinstall vcam") from exc
    with hold_stop_signals():
        write_new_file(path, text, force=force, exists=exists)
    return path

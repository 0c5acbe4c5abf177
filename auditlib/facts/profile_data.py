"""Profiles shipped as data in ``auditlib/profiles/`` (feature inventory, test
scenarios), each overridable by a config key naming a TOML file of the same shape
(relative to the target root, or absolute)."""
from __future__ import annotations

from pathlib import Path

import tomllib

PROFILES = Path(__file__).parent.parent / "profiles"


class ProfileError(ValueError):
    """The profile file could not be read; the message says which and why."""


def load_profile(ctx, key: str, packaged: str) -> tuple[dict, str]:
    """(data, where it came from) for the profile named by config ``key`` or the packaged one."""
    override = ctx.config.get(key, "")
    path = Path(override) if override else PROFILES / packaged
    if override and not path.is_absolute():
        path = ctx.root / path
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh), (_shipped(path) or override) if override else f"auditlib/profiles/{packaged}"
    except OSError as exc:
        raise ProfileError(f"cannot read {key} {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"invalid TOML in {key} {path}: {exc}") from None


def _shipped(path: Path) -> str:
    """``auditlib/profiles/...`` for a file of a shipped profile, else ''."""
    try:
        return "auditlib/profiles/" + path.resolve().relative_to(PROFILES.resolve()).as_posix()
    except ValueError:
        return ""

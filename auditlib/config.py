"""Audit configuration: the packaged default profile, then the target's
``[tool.auditlib]``, then ``--config FILE``; later layers override earlier ones."""
from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

DEFAULT_PROFILE = Path(__file__).parent / "profiles" / "default.toml"


class ConfigError(ValueError):
    """The configuration could not be read (the CLI turns this into exit code 2)."""


def _merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def _read_toml(path: Path) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"invalid TOML in {path}: {exc}") from None


def load_config(root: Path, config_file: Path | str | None = None) -> dict[str, Any]:
    """The effective configuration for auditing ``root``.

    A broken target ``pyproject.toml`` is not fatal (the target is what we audit; the
    problem is recorded under ``_warnings``); a broken ``--config`` file is.
    """
    cfg = _read_toml(DEFAULT_PROFILE)
    warnings: list[str] = []
    pyproject = Path(root) / "pyproject.toml"
    if pyproject.is_file():
        try:
            cfg = _merge(cfg, _read_toml(pyproject).get("tool", {}).get("auditlib", {}))
        except ConfigError as exc:
            warnings.append(str(exc))
    if config_file:
        data = _read_toml(Path(config_file))
        cfg = _merge(cfg, data.get("tool", {}).get("auditlib", data))
    unknown = sorted(set(cfg) - set(_read_toml(DEFAULT_PROFILE)))
    if unknown:
        warnings.append("unknown config keys ignored: " + ", ".join(unknown))
    cfg["_warnings"] = warnings
    return cfg

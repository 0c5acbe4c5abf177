"""Audit configuration: the packaged defaults, then the named profile if one is chosen
(``--profile NAME``, ``$AUDITLIB_PROFILE``, or ``profile = "NAME"`` in the configuration),
then the target's ``[tool.auditlib]``, then ``--config FILE``; later layers override
earlier ones. A named profile is a folder of ``auditlib/profiles/`` holding a
``config.toml`` (same keys; file names in it are relative to that folder)."""
from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import tomllib

PROFILES_DIR = Path(__file__).parent.parent / "profiles"
DEFAULT_PROFILE = PROFILES_DIR / "default.toml"
PROFILE_ENV = "AUDITLIB_PROFILE"  # set by `auditlib run --profile`, read by every notebook


# Keys whose defaults live beside the code that uses them (each module documents its
# key; the README lists them). They are accepted without an "unknown key" warning.
CODE_DEFAULT_KEYS = frozenset({
    # settings and production validation (settings_model.py, prod_validation.py)
    "env_setting_names", "prod_env_values", "prod_validation_rules", "env_implicit_prefixes",
    # security core (routes.py, tenancy.py, sec_005/006)
    "platform_auth", "rate_limit_exempt_paths", "worker_job_tables", "worker_scope_columns",
    # database and migrations (stages/database.py, dep_003, dep_008, rel_007, perf_001)
    "org_table", "required_indexes", "email_dedup_table", "email_dedup_columns",
    "alembic_downgrade_roundtrip", "squawk_exclude",
    # observability and compliance (obs_*, cmp_*)
    "health_paths", "ready_paths", "metrics_paths", "metrics_unbounded_labels", "metrics_token_setting",
    "log_pii_names", "email_sender_setting", "email_sender_name_setting", "email_preference_names",
    "retention_policies", "gdpr_export_names", "gdpr_erase_names",
    # features, scenarios, caching (func_001, test_002, perf_003)
    "features_file", "features_core_groups", "test_scenarios_file", "hot_read_paths",
    # tests and live stages (stages/tests_stage.py, stages/live*.py)
    "min_coverage", "tests_args", "tests_env", "live", "live_app", "live_app_dir", "live_factory",
})


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


def named_profiles() -> list[str]:
    """The profiles shipped with auditlib (folders of ``auditlib/profiles/``)."""
    return sorted(p.parent.name for p in PROFILES_DIR.glob("*/config.toml"))


def _profile(name: str) -> dict:
    path = PROFILES_DIR / name / "config.toml"
    if "/" in name or name.startswith(".") or not path.is_file():
        raise ConfigError(f"unknown profile {name!r} (available: {', '.join(named_profiles()) or 'none'})")
    data = _read_toml(path)
    for key, value in data.items():  # file names are relative to the profile's folder
        if key.endswith("_file") and isinstance(value, str) and value:
            data[key] = str(path.parent / value)
    data["profile"] = name
    return data


def profile_value(config: dict, key: str):
    """What the configuration's named profile sets for ``key`` (None: no profile, or the
    profile leaves it to the defaults): tells a profile's list from the auditor's own."""
    name = config.get("profile")
    if not name:
        return None
    try:
        return _profile(name).get(key)
    except ConfigError:
        return None


def load_config(root: Path, config_file: Path | str | None = None, profile: str | None = None) -> dict[str, Any]:
    """The effective configuration for auditing ``root``.

    A broken target ``pyproject.toml`` is not fatal (the target is what we audit; the
    problem is recorded under ``_warnings``), nor is an unknown profile named there; a
    broken ``--config`` file, or an unknown profile named by the auditor, is.
    """
    defaults = _read_toml(DEFAULT_PROFILE)
    user: dict = {}
    warnings: list[str] = []
    pyproject = Path(root) / "pyproject.toml"
    if pyproject.is_file():
        try:
            user = _merge(user, _read_toml(pyproject).get("tool", {}).get("auditlib", {}))
        except ConfigError as exc:
            warnings.append(str(exc))
    target_profile = user.get("profile", "")
    if config_file:
        data = _read_toml(Path(config_file))
        user = _merge(user, data.get("tool", {}).get("auditlib", data))
    name = profile or os.environ.get(PROFILE_ENV) or user.get("profile") or ""
    cfg = defaults
    if name:
        try:
            cfg = _merge(cfg, _profile(name))
        except ConfigError as exc:
            if name != target_profile or profile or os.environ.get(PROFILE_ENV):
                raise
            warnings.append(f"{exc}; named in the target's pyproject.toml, ignored")
    user.pop("profile", None)
    cfg = _merge(cfg, user)
    unknown = sorted(set(cfg) - set(defaults) - CODE_DEFAULT_KEYS)
    if unknown:
        warnings.append("unknown config keys ignored: " + ", ".join(unknown))
    cfg["_warnings"] = warnings
    return cfg

"""Audit configuration: the packaged default profile, then the target's
``[tool.auditlib]``, then ``--config FILE``; later layers override earlier ones."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import tomllib

DEFAULT_PROFILE = Path(__file__).parent.parent / "profiles" / "default.toml"


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
    unknown = sorted(set(cfg) - set(_read_toml(DEFAULT_PROFILE)) - CODE_DEFAULT_KEYS)
    if unknown:
        warnings.append("unknown config keys ignored: " + ", ".join(unknown))
    cfg["_warnings"] = warnings
    return cfg

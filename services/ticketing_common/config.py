"""Configuration from the environment, and nothing else.

Each service has one ``config.py`` with a frozen dataclass and a ``from_env`` constructor built from
these helpers. A bad value fails at start-up with a message that names the variable.
"""
from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


class ConfigError(ValueError):
    """A configuration variable has a value the service cannot use."""


def _raw(name: str, environ: Mapping[str, str] | None) -> str | None:
    env = os.environ if environ is None else environ
    value = env.get(name)
    if value is None:
        return None
    value = value.strip()
    return value if value != "" else None


def env_str(name: str, default: str | None = None, environ: Mapping[str, str] | None = None) -> str | None:
    value = _raw(name, environ)
    return default if value is None else value


def env_int(name: str, default: int, environ: Mapping[str, str] | None = None, *,
            minimum: int | None = None, maximum: int | None = None) -> int:
    value = _raw(name, environ)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise ConfigError(f"{name} must be <= {maximum}, got {number}")
    return number


def env_float(name: str, default: float, environ: Mapping[str, str] | None = None, *,
              minimum: float | None = None) -> float:
    value = _raw(name, environ)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {value!r}") from None
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {number}")
    return number


def env_bool(name: str, default: bool, environ: Mapping[str, str] | None = None) -> bool:
    value = _raw(name, environ)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name} must be a boolean (true/false), got {value!r}")


def env_choice(name: str, default: str, choices: tuple[str, ...],
               environ: Mapping[str, str] | None = None) -> str:
    value = (_raw(name, environ) or default).lower()
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def resolve(cls: type[T], config: Any = None) -> T:
    """Turn ``create_app``'s ``config`` argument into a config object.

    ``None`` reads the environment; an instance of ``cls`` is used as is; a mapping is applied as
    overrides (by field name) on top of the environment.
    """
    if config is None:
        return cls.from_env()  # type: ignore[attr-defined]
    if isinstance(config, cls):
        return config
    if isinstance(config, Mapping):
        base = cls.from_env()  # type: ignore[attr-defined]
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(config) - names
        if unknown:
            raise ConfigError(f"unknown config field(s) for {cls.__name__}: {', '.join(sorted(unknown))}")
        return dataclasses.replace(base, **config)  # type: ignore[type-var]
    raise TypeError(f"config must be None, a mapping or a {cls.__name__}")

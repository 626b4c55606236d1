"""Read service configuration from environment variables, with clear errors for bad values."""
from __future__ import annotations

import logging
import math
import os
import sys
from typing import Callable, TypeVar

T = TypeVar("T")


class ConfigError(Exception):
    """An environment variable holds a value the service cannot use."""


def env_str(name: str, default: str) -> str:
    """Return the variable's value, or ``default`` when unset or empty."""
    return os.environ.get(name) or default


def _parse(name: str, default: T, convert: Callable[[str], T], what: str) -> T:
    raw = os.environ.get(name)
    if not raw:
        return default
    try:
        return convert(raw.strip())
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not {what}") from None


def env_int(name: str, default: int, minimum: int | None = None) -> int:
    """Return the variable as an integer no lower than ``minimum``."""
    value = _parse(name, default, int, "an integer")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


def env_float(name: str, default: float, minimum: float | None = None) -> float:
    """Return the variable as a number no lower than ``minimum``."""
    value = _parse(name, default, float, "a number")
    if not math.isfinite(value):
        raise ConfigError(f"{name}={value} must be a finite number")
    if minimum is not None and value < minimum:
        raise ConfigError(f"{name}={value} must be at least {minimum}")
    return value


def env_bool(name: str, default: bool) -> bool:
    """Return the variable as a switch: 1/true/yes/on or 0/false/no/off."""
    def convert(raw: str) -> bool:
        words = {"1": True, "true": True, "yes": True, "on": True,
                 "0": False, "false": False, "no": False, "off": False}
        if raw.lower() not in words:
            raise ValueError(raw)
        return words[raw.lower()]
    return _parse(name, default, convert, "on or off")


def setup_logging() -> None:
    """Log to stderr at LOG_LEVEL (default INFO)."""
    level = os.environ.get("LOG_LEVEL", "INFO").upper()
    logging.basicConfig(level=level if level in logging.getLevelNamesMapping() else "INFO",
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")


def run_main(load: Callable[[], T], start: Callable[[T], None]) -> None:
    """Load a config from the environment and start the service; bad config exits with 2."""
    setup_logging()
    try:
        config = load()
    except ConfigError as err:
        print(f"configuration error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        start(config)
    except OSError as err:  # most often: the port is taken
        print(f"cannot start: {err.strerror or err}", file=sys.stderr)
        raise SystemExit(1) from None

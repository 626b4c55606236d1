"""Unit tests of httpkit.config: environment variables read with clear errors."""
from __future__ import annotations

from collections.abc import Callable

import pytest

from httpkit.config import ConfigError, env_bool, env_float, env_int, env_str, run_main


def configuration_error(read: Callable[..., object], *args: object) -> str:
    """Call a reader expected to refuse its variable; return what it said."""
    with pytest.raises(ConfigError) as caught:
        read(*args)
    return str(caught.value)


def test_env_int_reads_an_integer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PORT", " 8200 ")
    assert env_int("PORT", 8080) == 8200


@pytest.mark.parametrize("unset", [True, False])
def test_an_unset_or_empty_variable_gives_the_default(monkeypatch: pytest.MonkeyPatch,
                                                      unset: bool) -> None:
    for name in ("PORT", "CACHE_TTL_S", "LIKE_BATCHING", "HOST"):
        if unset:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, "")
    assert env_int("PORT", 8080, minimum=1) == 8080
    assert env_float("CACHE_TTL_S", 60.0) == 60.0
    assert env_bool("LIKE_BATCHING", True) is True
    assert env_str("HOST", "127.0.0.1") == "127.0.0.1"


def test_env_str_reads_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UPSTREAM_URL", "http://127.0.0.1:8300")
    assert env_str("UPSTREAM_URL", "http://default") == "http://127.0.0.1:8300"


@pytest.mark.parametrize("raw", ["eighty", "80.5", "8_0x", "0x50"])
def test_env_int_names_the_variable_holding_a_non_integer(monkeypatch: pytest.MonkeyPatch,
                                                          raw: str) -> None:
    monkeypatch.setenv("PORT", raw)
    assert configuration_error(env_int, "PORT", 8080) == f"PORT={raw!r} is not an integer"


def test_env_int_refuses_a_value_below_its_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIKE_BATCH_SIZE", "0")
    message = configuration_error(env_int, "LIKE_BATCH_SIZE", 10, 1)
    assert message == "LIKE_BATCH_SIZE=0 must be at least 1"
    monkeypatch.setenv("LIKE_BATCH_SIZE", "1")
    assert env_int("LIKE_BATCH_SIZE", 10, minimum=1) == 1


@pytest.mark.parametrize("raw,value", [("60", 60.0), ("0.25", 0.25), ("1e3", 1000.0)])
def test_env_float_reads_a_number(monkeypatch: pytest.MonkeyPatch, raw: str,
                                  value: float) -> None:
    monkeypatch.setenv("CACHE_TTL_S", raw)
    assert env_float("CACHE_TTL_S", 60.0) == value


def test_env_float_names_the_variable_holding_a_non_number(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_TTL_S", "a minute")
    message = configuration_error(env_float, "CACHE_TTL_S", 60.0)
    assert message == "CACHE_TTL_S='a minute' is not a number"


def test_env_float_refuses_a_value_below_its_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIKE_MAX_AGE_S", "-1")
    message = configuration_error(env_float, "LIKE_MAX_AGE_S", 60.0, 0.0)
    assert message == "LIKE_MAX_AGE_S=-1.0 must be at least 0.0"


def test_env_float_refuses_not_a_number(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHE_TTL_S", "nan")
    assert "CACHE_TTL_S" in configuration_error(env_float, "CACHE_TTL_S", 60.0, 0.0)


@pytest.mark.parametrize("raw", ["1", "true", "TRUE", "yes", "On", " on "])
def test_env_bool_reads_on(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("LIKE_BATCHING", raw)
    assert env_bool("LIKE_BATCHING", False) is True


@pytest.mark.parametrize("raw", ["0", "false", "False", "no", "OFF"])
def test_env_bool_reads_off(monkeypatch: pytest.MonkeyPatch, raw: str) -> None:
    monkeypatch.setenv("LIKE_BATCHING", raw)
    assert env_bool("LIKE_BATCHING", True) is False


@pytest.mark.parametrize("raw", ["maybe", "2", "enabled"])
def test_env_bool_names_the_variable_holding_anything_else(monkeypatch: pytest.MonkeyPatch,
                                                           raw: str) -> None:
    monkeypatch.setenv("LIKE_BATCHING", raw)
    message = configuration_error(env_bool, "LIKE_BATCHING", True)
    assert message == f"LIKE_BATCHING={raw!r} is not on or off"


def test_run_main_starts_the_service_with_its_config() -> None:
    started: list[int] = []
    run_main(lambda: 8200, started.append)
    assert started == [8200]


def test_run_main_exits_with_2_and_says_why_on_a_bad_config(
        capsys: pytest.CaptureFixture[str]) -> None:
    def load() -> int:
        raise ConfigError("PORT='eighty' is not an integer")

    def start(port: int) -> None:
        raise AssertionError("a service with a bad config must not start")

    with pytest.raises(SystemExit) as exited:
        run_main(load, start)
    assert exited.value.code == 2
    assert capsys.readouterr().err == "configuration error: PORT='eighty' is not an integer\n"

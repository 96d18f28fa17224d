"""Settings: defaults < TOML file < TRIOTOK_* environment < flags, validated at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from triotok.app import module_settings
from triotok.config import FIELDS, Settings, load_settings
from triotok.modules.orders import HttpProvider, ManualProvider, Payments
from triotok.store import DEFAULT_STORE_URL
from triotok.supervision import InvalidConfig as InvalidConfigError


def test_defaults() -> None:
    settings = load_settings()
    assert settings == Settings()
    assert (settings.host, settings.port, settings.rate_limit_per_ip) == ("127.0.0.1", 8000, 100)
    assert settings.store_url == DEFAULT_STORE_URL


def test_layers_override_in_order(tmp_path: Path) -> None:
    path = tmp_path / "triotok.toml"
    path.write_text(
        '[server]\nport = 9001\nhost = "0.0.0.0"\nworkers = 2\n'
        "[http]\nrate_limit_per_ip = 7\n"
        '[store]\nurl = "sqlite:///file.db"\n'
    )
    env = {"TRIOTOK_PORT": "9002", "TRIOTOK_RATE_LIMIT_PER_IP": "8", "HOME": "/x"}
    settings = load_settings(config_file=path, env=env, flags={"port": 9003, "host": None})
    assert settings.port == 9003  # flag
    assert settings.rate_limit_per_ip == 8  # env over file
    assert settings.host == "0.0.0.0"  # file (the flag was not given)
    assert settings.workers == 2
    assert settings.store_url == "sqlite:///file.db"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"flags": {"port": 70000}}, "port"),
        ({"flags": {"workers": 0}}, "workers"),
        ({"flags": {"host": "not a host"}}, "host"),
        ({"flags": {"store_url": "mysql://x"}}, "store url"),
        ({"flags": {"operator_tenant": "../x"}}, "operator_tenant"),
        ({"flags": {"log_level": "loud"}}, "log_level"),
        ({"flags": {"workers": 2, "port": 0}}, "workers"),
        ({"env": {"TRIOTOK_PORT": "eighty"}}, "port"),
        ({"env": {"TRIOTOK_DEMO": "maybe"}}, "demo"),
        ({"env": {"TRIOTOK_PROT": "1"}}, "TRIOTOK_PROT"),
        ({"flags": {"max_body_bytes": 0}}, "max_body_bytes"),
        ({"flags": {"graceful_timeout": float("nan")}}, "graceful_timeout"),
        ({"flags": {"payments_provider": "stripe"}}, "payments_provider"),
        ({"flags": {"payments_provider": "http"}}, "payments_url"),
        ({"flags": {"payments_url": "ftp://pay"}}, "payments_url"),
        ({"flags": {"payments_timeout": 0}}, "payments_timeout"),
    ],
)
def test_invalid_settings_name_the_field(kwargs: dict[str, dict[str, object]], field: str) -> None:
    with pytest.raises(InvalidConfigError) as info:
        load_settings(**kwargs)  # type: ignore[arg-type]  # test data: mappings by keyword
    assert info.value.field == field


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[server]\nport = 'x'\n", "port"),
        ("[server]\nprot = 1\n", "server.prot"),
        ("[nope]\na = 1\n", "nope"),
        ("not toml [", "config"),
        ("[server]\nport = 1.5\n", "port"),
    ],
)
def test_invalid_files_name_the_field(tmp_path: Path, text: str, field: str) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(InvalidConfigError) as info:
        load_settings(config_file=path)
    assert info.value.field == field
    assert str(path) in str(info.value) or field == "config"


def test_missing_file() -> None:
    with pytest.raises(InvalidConfigError, match="no such file"):
        load_settings(config_file="/nonexistent/triotok.toml")


def test_every_field_is_declared_once() -> None:
    names = [f.name for f in FIELDS]
    assert sorted(names) == sorted(Settings.__dataclass_fields__)
    assert len({(f.section, f.key) for f in FIELDS}) == len(FIELDS)


def test_the_payments_table_routes_the_orders_module_to_an_http_provider(tmp_path: Path) -> None:
    path = tmp_path / "triotok.toml"
    path.write_text('[payments]\nprovider = "http"\nurl = "http://127.0.0.1:9000"\ntimeout = 2\n')
    settings = load_settings(config_file=path)
    orders = module_settings(settings)["orders"]
    assert orders == {
        "payments": {"provider": "http", "url": "http://127.0.0.1:9000", "timeout": 2.0}
    }
    payments = Payments.from_settings(orders)
    assert isinstance(payments.provider_for("acme"), HttpProvider)
    # Left at the defaults, the orders module gets nothing: the manual provider.
    assert module_settings(load_settings())["orders"] == {}
    assert isinstance(Payments.from_settings({}).provider_for("acme"), ManualProvider)

"""`leasq serve` configuration: flags, then LEASQ_* environment variables, then defaults."""

from __future__ import annotations

import sys
import types
from pathlib import Path

import pytest

from leasq_broker.cli import SERVE_FLAGS, build_parser, main, resolve_config
from leasq_broker.config import BrokerConfig


def resolve(argv: list[str], environ: dict[str, str]) -> tuple[BrokerConfig, Path | None]:
    return resolve_config(build_parser().parse_args(["serve", *argv]), environ)


def test_with_no_flags_and_no_environment_the_config_defaults_apply() -> None:
    config, ready_file = resolve([], {})
    assert config == BrokerConfig()
    assert ready_file is None


def test_each_flag_falls_back_to_its_leasq_environment_variable() -> None:
    environ = {
        "LEASQ_LISTEN": "0.0.0.0:6000",
        "LEASQ_REDIS_URL": "redis://10.0.0.1:6380/2",
        "LEASQ_DATA_DIR": "/var/lib/leasq",
        "LEASQ_MAX_PAYLOAD_BYTES": "4096",
        "LEASQ_GRACE": "2.5",
        "LEASQ_LEASE_LOST_CAP": "2",
        "LEASQ_ARCHIVE_MAX_AGE": "3600",
        "LEASQ_ARCHIVE_MAX_SIZE": "10",
        "LEASQ_AUTH_TOKEN": "s3cret",
        "LEASQ_LOG_FORMAT": "json",
        "LEASQ_LOG_LEVEL": "DEBUG",
        "LEASQ_KEY_PREFIX": "staging",
        "LEASQ_READY_FILE": "/run/leasq.ready",
    }
    config, ready_file = resolve([], environ)
    assert config == BrokerConfig(
        listen="0.0.0.0:6000",
        redis_url="redis://10.0.0.1:6380/2",
        data_dir=Path("/var/lib/leasq"),
        max_payload_bytes=4096,
        grace_seconds=2.5,
        lease_lost_cap=2,
        archive_max_age_seconds=3600.0,
        archive_max_size=10,
        auth_token="s3cret",
        log_format="json",
        log_level="debug",
        key_prefix="staging",
    )
    assert ready_file == Path("/run/leasq.ready")


def test_a_flag_wins_over_its_environment_variable() -> None:
    config, _ = resolve(
        ["--lease-lost-cap", "7", "--redis-url", "unix:///tmp/r.sock"],
        {"LEASQ_LEASE_LOST_CAP": "2", "LEASQ_REDIS_URL": "redis://elsewhere"},
    )
    assert config.lease_lost_cap == 7
    assert config.redis_url == "unix:///tmp/r.sock"


def test_an_empty_redis_url_variable_means_the_embedded_redis() -> None:
    config, _ = resolve([], {"LEASQ_REDIS_URL": ""})
    assert config.redis_url is None


def test_every_config_field_has_a_flag() -> None:
    fields = {flag.field for flag in SERVE_FLAGS}
    # process_index is set by the parent of --processes N on its children (a hidden flag).
    assert fields == set(BrokerConfig.__dataclass_fields__) - {"process_index"}


def test_a_malformed_environment_value_is_reported_with_its_variable(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEASQ_LEASE_LOST_CAP", "many")
    with pytest.raises(SystemExit) as exit_info:
        main(["serve"])
    assert exit_info.value.code == 2
    assert "LEASQ_LEASE_LOST_CAP" in capsys.readouterr().err


def test_a_malformed_flag_is_refused_with_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--log-level", "loud"])
    assert exit_info.value.code == 2
    assert "--log-level" in capsys.readouterr().err


def test_serve_help_names_each_flag_its_variable_and_its_default(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for flag in SERVE_FLAGS:
        assert f"--{flag.name}" in text
        assert flag.env in text
    assert "default: 127.0.0.1:50051" in text


def test_no_command_prints_usage_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "serve" in capsys.readouterr().err


def test_worker_command_hands_its_arguments_to_the_worker_runtime(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[list[str]] = []

    def fake_main(argv: list[str]) -> int:
        seen.append(argv)
        return 0

    runtime = types.ModuleType("leasq_worker.cli")
    runtime.main = fake_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "leasq_worker.cli", runtime)
    assert main(["worker", "app.tasks:registry", "--queue", "default"]) == 0
    assert seen == [["app.tasks:registry", "--queue", "default"]]


def test_worker_command_says_so_when_the_worker_runtime_cannot_be_imported(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "leasq_worker.cli", None)
    assert main(["worker", "--help"]) == 2
    assert "worker runtime is not available" in capsys.readouterr().err

"""The ``leasq`` process end to end: help, exit codes, one-line errors, environment variables,
the config file, tokens, a bulk command without a terminal, and one frame of ``dash``."""

from __future__ import annotations

from pathlib import Path

from broker_process import BrokerFactory, BrokerHandle
from cli_testing import Leasq, one_error_line, run_in_process, run_process

from leasq_broker.embedded_redis import free_loopback_port
from leasq_sdk import Client

COMMANDS = ("serve", "worker", "token", "stats", "queue", "task", "schedule", "group", "dash")


def test_help_lists_every_command_including_serve_worker_and_token(tmp_path: Path) -> None:
    run = run_process(["--help"], home=tmp_path).ok()
    listed = {line.split()[0] for line in run.stdout.split("Commands:")[1].splitlines()
              if line.strip()}
    assert set(COMMANDS) <= listed


def test_no_command_prints_the_overview_on_stderr_and_exits_2(tmp_path: Path) -> None:
    run = run_process([], home=tmp_path)
    assert run.code == 2
    assert "stats" in run.stderr and "serve" in run.stderr


def test_environment_variables_choose_the_broker_and_json_output(
    broker: BrokerHandle, client: Client, home: Path
) -> None:
    client.enqueue("t", b"", queue="env-q")
    run = run_process(["stats"], home=home,
                      env={"LEASQ_BROKER": broker.address, "LEASQ_JSON": "1"}).ok()
    assert [q["queue"] for q in run.json()["queues"]] == ["env-q"]


def test_a_flag_wins_over_its_environment_variable(broker: BrokerHandle, home: Path) -> None:
    closed = f"127.0.0.1:{free_loopback_port()}"
    run = run_in_process(["--broker", broker.address, "queue", "ls"], home=home,
                         env={"LEASQ_BROKER": closed})
    assert run.code == 0, run.describe()


def test_the_config_file_is_read_from_the_flag_and_from_the_default_place(
    broker: BrokerHandle, client: Client, home: Path, tmp_path: Path
) -> None:
    client.enqueue("t", b"", queue="cfg-q")
    config = tmp_path / "leasq.toml"
    config.write_text(f'broker = "{broker.address}"\njson = true\ntimeout = 5\n')
    run = run_in_process(["--config", str(config), "queue", "ls"], home=home).ok()
    assert [q["queue"] for q in run.json()] == ["cfg-q"]
    default = home / ".config" / "leasq" / "cli.toml"
    default.parent.mkdir(parents=True)
    default.write_text(f'broker = "{broker.address}"\n')
    run = run_process(["queue", "ls"], home=home).ok()
    assert "cfg-q" in run.stdout and not run.stdout.startswith("[")


def test_a_config_file_with_an_unknown_key_is_a_usage_error(home: Path, tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('brokr = "x:1"\n')
    run = run_process(["--config", str(config), "stats"], home=home)
    assert run.code == 2
    assert "brokr" in one_error_line(run)


def test_an_unreachable_broker_is_one_line_and_exit_code_5(home: Path) -> None:
    closed = f"127.0.0.1:{free_loopback_port()}"
    run = run_process(["--broker", closed, "--timeout", "1", "stats"], home=home)
    assert run.code == 5
    assert closed in one_error_line(run)


def test_a_usage_error_is_one_line_and_exit_code_2(home: Path) -> None:
    run = run_process(["task", "ls", "q", "--state", "sleeping"], home=home)
    assert run.code == 2
    assert "--state" in one_error_line(run)


def test_not_found_is_exit_code_3_from_the_process(broker: BrokerHandle, home: Path) -> None:
    run = run_process(["--broker", broker.address, "task", "get", "q", "nope"], home=home)
    assert run.code == 3
    assert one_error_line(run).startswith("error: TASK_NOT_FOUND")


def test_a_missing_token_is_exit_code_6_and_the_token_variable_is_sent(
    broker_factory: BrokerFactory, home: Path
) -> None:
    secured = broker_factory(auth_token="s3cret")
    run = run_process(["--broker", secured.address, "queue", "ls"], home=home)
    assert run.code == 6
    one_error_line(run)
    run = run_process(["--broker", secured.address, "queue", "ls"], home=home,
                      env={"LEASQ_TOKEN": "s3cret"})
    assert run.code == 0, run.describe()


def test_a_bulk_command_without_a_terminal_or_yes_changes_nothing(
    broker: BrokerHandle, client: Client, home: Path
) -> None:
    client.enqueue("t", b"", queue="q")
    run = run_process(["--broker", broker.address, "task", "archive-all", "q", "--state",
                       "pending"], home=home)
    assert run.code == 1
    assert "pass --yes" in run.stderr
    assert client.queue_stats("q").pending == 1


def test_dash_once_renders_one_frame_of_every_queue(leasq: Leasq, client: Client) -> None:
    client.enqueue("t", b"", queue="alpha")
    client.enqueue("t", b"", queue="alpha")
    text = leasq("dash", "--once").ok().stdout
    assert "leasq dash" in text
    row = next(line.split() for line in text.splitlines() if line.startswith("alpha"))
    assert row[:3] == ["alpha", "running", "2"]
    assert "done/s" in text
    data = leasq("dash", "--once", "--json").json()
    assert data["queues"][0]["pending"] == 2


def test_serve_and_token_keep_their_own_arguments_after_global_options(tmp_path: Path) -> None:
    run = run_process(["--json", "token", "new"], home=tmp_path).ok()
    assert "[[token]]" in run.stdout
    run = run_process(["serve", "--help"], home=tmp_path).ok()
    assert "--redis-url" in run.stdout

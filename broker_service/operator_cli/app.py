"""The root ``leasq`` click group: the connection options, the command groups, and the one place
where failures become an ``error:`` line and an exit code (see :mod:`.errors`).

``leasq serve``, ``leasq token`` and ``leasq worker MODULE:REGISTRY`` keep their argparse
implementations in :mod:`leasq_broker.cli`, which sends them there before click sees them; the
group lists them too, so that ``leasq --help`` shows every command.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from leasq_broker.operator_cli.command import OperatorGroup
from leasq_broker.operator_cli.config import ConfigError, read_config_file, resolve
from leasq_broker.operator_cli.context import Operator
from leasq_broker.operator_cli.errors import CommandError, ExitCode

#: Subcommands of ``leasq worker`` that are operator commands; any other first argument of
#: ``leasq worker`` (``MODULE:REGISTRY``, a flag) runs a worker.
WORKER_OPERATOR_COMMANDS = frozenset({"ls", "quiet", "stop"})


def _root(ctx: click.Context, config: Path | None, **given: Any) -> None:
    """Resolve the settings once for the whole invocation and make the shared context."""
    try:
        settings = resolve(given, read_config_file(config))
    except ConfigError as exc:
        raise CommandError(str(exc), ExitCode.USAGE) from exc
    operator = Operator(settings)
    ctx.obj = operator
    ctx.call_on_close(operator.close)


CONNECTION_OPTIONS = (
    click.Option(["--broker"], envvar="LEASQ_BROKER", metavar="HOST:PORT",
                 help="Broker address [env LEASQ_BROKER; default 127.0.0.1:50051]."),
    click.Option(["--token"], envvar="LEASQ_TOKEN",
                 help="Bearer token [env LEASQ_TOKEN]."),
    click.Option(["--tls/--no-tls"], default=None, envvar="LEASQ_TLS",
                 help="Use TLS (implied by --tls-ca or --tls-cert) [env LEASQ_TLS]."),
    click.Option(["--tls-ca"], envvar="LEASQ_TLS_CA", metavar="PATH",
                 help="PEM roots to trust instead of the system's [env LEASQ_TLS_CA]."),
    click.Option(["--tls-cert"], envvar="LEASQ_CLIENT_CERT", metavar="PATH",
                 help="Client certificate for mutual TLS [env LEASQ_CLIENT_CERT]."),
    click.Option(["--tls-key"], envvar="LEASQ_CLIENT_KEY", metavar="PATH",
                 help="Private key of --tls-cert [env LEASQ_CLIENT_KEY]."),
    click.Option(["--json"], is_flag=True, default=None, envvar="LEASQ_JSON",
                 help="Print JSON instead of tables [env LEASQ_JSON]."),
    click.Option(["--timeout"], type=click.FloatRange(min=0, min_open=True),
                 envvar="LEASQ_TIMEOUT", metavar="SECONDS",
                 help="Deadline of each call [env LEASQ_TIMEOUT; default 10]."),
    click.Option(["--config"], type=click.Path(dir_okay=False, path_type=Path),
                 envvar="LEASQ_CONFIG",
                 help="TOML file with the keys above [env LEASQ_CONFIG; default "
                 "~/.config/leasq/cli.toml if present]."),
)  # fmt: skip


def _passthrough(name: str, help_text: str) -> click.Command:
    """A command listed in ``--help`` whose arguments go unchanged to the argparse code of
    :mod:`leasq_broker.cli` (reached here only after global options, ``leasq --json serve``)."""

    def run(args: Sequence[str]) -> None:
        from leasq_broker.cli import main

        sys.exit(main([name, *args]))

    return click.Command(
        name, callback=run, help=help_text, add_help_option=False,
        params=[click.Argument(["args"], nargs=-1, type=click.UNPROCESSED)],
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )  # fmt: skip


def build() -> OperatorGroup:
    """The ``leasq`` group with every command."""
    from leasq_broker.operator_cli import dash, groups, queues, schedules, stats, tasks, workers

    root = OperatorGroup(
        "leasq", callback=click.pass_context(_root), params=list(CONNECTION_OPTIONS),
        help="Leasq task broker: run a broker or a worker, and operate queues, tasks, "
        "schedules, groups and workers over gRPC.",
        context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
    )  # fmt: skip
    root.add_command(_passthrough("serve", "Run a broker (see `leasq serve --help`)."))
    root.add_command(_passthrough(
        "token", "Make a bearer token, or hash one for --auth-tokens-file."))
    for command in (stats.stats, queues.queue, tasks.task, workers.worker, schedules.schedule,
                    groups.group, dash.dash):
        root.add_command(command)
    return root


def run(argv: list[str]) -> int:
    """Run an operator command; the exit code. Errors print one ``error:`` line on stderr."""
    root = build()
    try:
        result = root.main(argv, prog_name="leasq", standalone_mode=False)
    except CommandError as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return int(exc.code)
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        return int(ExitCode.USAGE)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo("error: interrupted", err=True)
        return 130  # the shell's code for SIGINT
    # click answers the exit code of --help and ctx.exit(); a command itself returns None.
    return result if isinstance(result, int) else int(ExitCode.OK)

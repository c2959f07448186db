"""The click classes of the operator commands: every leaf command takes ``--json`` after its
name, and the groups turn the SDK's typed errors into an ``error:`` line and an exit code."""

from __future__ import annotations

from typing import Any

import click

from leasq_broker.operator_cli.config import ConfigError
from leasq_broker.operator_cli.context import Operator
from leasq_broker.operator_cli.errors import CommandError, ExitCode, describe, exit_code
from leasq_sdk.errors import LeasqError


def _json_flag(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    operator = ctx.find_object(Operator)
    if value and operator is not None:
        operator.out.as_json = True


class OperatorCommand(click.Command):
    """A leaf command: takes ``--json`` after its name too (``leasq stats --json``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.append(click.Option(
            ["--json", "as_json"], is_flag=True, expose_value=False, callback=_json_flag,
            help="Print JSON instead of a table.",
        ))  # fmt: skip


class OperatorGroup(click.Group):
    """A group whose commands and subgroups are operator commands; the root one turns SDK
    errors into exit codes."""

    command_class = OperatorCommand
    group_class = type  # subgroups are OperatorGroups too

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LeasqError as exc:
            operator = ctx.find_object(Operator)
            broker = operator.settings.broker if operator else "?"
            raise CommandError(describe(exc, str(broker)), exit_code(exc)) from exc
        except ConfigError as exc:
            raise CommandError(str(exc), ExitCode.USAGE) from exc

"""The state one ``leasq`` invocation shares between the root group and its command: the
resolved settings, the output printer and one client, opened on first use and closed at exit."""

from __future__ import annotations

import click

from leasq_broker.operator_cli.config import Settings, connect
from leasq_broker.operator_cli.errors import CommandError, ExitCode
from leasq_broker.operator_cli.output import Output
from leasq_sdk import Client


class Operator:
    """``ctx.obj`` of every operator command (take it with ``@click.pass_obj``): what a
    command needs: ``client`` (connected lazily), ``out`` and ``settings``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.out = Output(as_json=settings.json)
        self._client: Client | None = None

    @property
    def client(self) -> Client:
        if self._client is None:
            try:
                self._client = connect(self.settings)
            except OSError as exc:  # a certificate or key file that cannot be read
                name = getattr(exc, "filename", None) or ""
                raise CommandError(f"cannot read {name}: {exc.strerror or exc}",
                                   ExitCode.USAGE) from exc
            except ValueError as exc:
                raise CommandError(str(exc), ExitCode.USAGE) from exc
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def confirm(question: str, *, assume_yes: bool) -> None:
    """Go on only with ``--yes`` or when the answer on standard input is yes (the question goes
    to stderr). No answer (a script without ``--yes``, stdin closed or empty) is a no: a
    forgotten flag must neither move tasks nor hang."""
    if assume_yes:
        return
    try:
        agreed = click.confirm(question, default=False, err=True)
    except click.Abort:
        click.echo(err=True)  # end the question's line
        raise CommandError("not confirmed (no answer on standard input; pass --yes to go "
                           "ahead); nothing changed", ExitCode.FAILED) from None
    if not agreed:
        raise CommandError("not confirmed; nothing changed", ExitCode.FAILED)

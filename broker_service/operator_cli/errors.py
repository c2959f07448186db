"""Exit codes of the operator commands, and the one line a failure prints instead of a traceback.

Scripts branch on the code, so each kind of failure has its own:

== =========================================================================================
0  done
1  any other failure; also a bulk command or a deletion that was not confirmed
2  usage: a bad flag, argument, config file or certificate path; a value the broker refused
   as invalid (INVALID_ARGUMENT)
3  not found: task, queue, schedule, group or worker
4  refused: the broker will not do it in the current state (wrong state, queue not empty,
   already exists, a limit hit)
5  unavailable: the broker cannot be reached, did not answer within --timeout, or cannot
   reach its Redis
6  not allowed: missing or wrong token (UNAUTHENTICATED), or a role without the right
   (PERMISSION_DENIED)
== =========================================================================================

and 130 when interrupted (Ctrl-C), as shells report SIGINT.
"""

from __future__ import annotations

import enum

import click

from leasq_sdk.errors import (
    AlreadyExists,
    BrokerUnavailable,
    FailedPrecondition,
    GroupNotFound,
    InvalidArgument,
    LeasqError,
    PermissionDenied,
    QueueNotFound,
    ResourceExhausted,
    ScheduleNotFound,
    TaskNotFound,
    Unauthenticated,
    WorkerNotFound,
)


class ExitCode(enum.IntEnum):
    """The process exit codes (documented in docs/cli.md)."""

    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    REFUSED = 4
    UNAVAILABLE = 5
    NOT_ALLOWED = 6


_BY_CLASS: tuple[tuple[type[LeasqError] | tuple[type[LeasqError], ...], ExitCode], ...] = (
    (InvalidArgument, ExitCode.USAGE),
    ((TaskNotFound, QueueNotFound, ScheduleNotFound, GroupNotFound, WorkerNotFound),
     ExitCode.NOT_FOUND),
    ((FailedPrecondition, AlreadyExists, ResourceExhausted), ExitCode.REFUSED),
    (BrokerUnavailable, ExitCode.UNAVAILABLE),
    ((Unauthenticated, PermissionDenied), ExitCode.NOT_ALLOWED),
)


def exit_code(error: LeasqError) -> ExitCode:
    """The exit code of a refused or failed broker call."""
    for classes, code in _BY_CLASS:
        if isinstance(error, classes):
            return code
    return ExitCode.FAILED


def describe(error: LeasqError, broker: str) -> str:
    """The message of the ``error:`` line: the SDK's message, and the broker address when the
    broker could not be reached (the usual cause is a wrong ``--broker``)."""
    if isinstance(error, BrokerUnavailable):
        return f"broker {broker} unavailable: {error}"
    return str(error)


class CommandError(click.ClickException):
    """A failure a command reports itself, with its exit code (printed as ``error: ...``)."""

    def __init__(self, message: str, code: ExitCode = ExitCode.FAILED) -> None:
        super().__init__(message)
        self.code = code

"""Authorization: which role each call needs, which queues a request touches, and the verdict.

:class:`Authorizer` is a plain object with no gRPC in it: ``check(token, method, queues)``
answers allow / unauthenticated / permission denied with a message a person can act on. The gRPC
interceptor uses it, and the HTTP server (``/metrics``, the dashboard) is meant to reuse it by
naming the gRPC method whose data a route shows (the dashboard's queue list is
``/leasq.v1.InspectService/ListQueues``).

Roles: ``producer`` enqueues, ``worker`` leases, heartbeats and settles, ``reader`` reads queues,
tasks and schedules, ``admin`` may do everything. A token limited to queue patterns may only
name queues that match one of them, and lease with a queue pattern only when one of its
patterns surely covers it (``tenant.*`` covers ``tenant.a*``, not ``*``); calls that name no
queue (ListQueues, schedule reads) need only the role, and schedule writes by name (which reach
a queue the request does not name) need a token for every queue. A method missing from
:data:`METHOD_RULES` needs ``admin``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from fnmatch import fnmatchcase
from typing import Any

from leasq.v1 import broker_service_pb2 as broker_pb
from leasq_broker.config import BrokerConfig
from leasq_broker.edge.tokens import Principal, Role, TokenStore
from leasq_broker.patterns.matching import covers, is_pattern

DEFAULT_QUEUE = "default"
QueuesOf = Callable[[Any], Iterable[str]]


class Scope(Enum):
    """Which queues a call reaches."""

    NONE = "none"  # no queue in particular: the role is enough
    REQUEST = "request"  # the queues the request names
    EVERY = "every"  # queues the request does not name: needs a token for every queue


@dataclass(frozen=True, slots=True)
class MethodRule:
    """The role a method needs and, for Scope.REQUEST, the queues a request names."""

    role: Role
    scope: Scope = Scope.NONE
    queues_of: QueuesOf | None = None


def _spec_queue(queue: str) -> str:
    return queue or DEFAULT_QUEUE


def _lease_queues(request: broker_pb.LeaseRequest) -> Iterable[str]:
    """Named queues and patterns (a pattern holds ``*`` or ``?``, which no name does)."""
    return [weight.pattern or weight.queue for weight in request.queues]


def _settle_queues(request: broker_pb.AckRequest | broker_pb.NackRequest) -> Iterable[str]:
    queues = [item.lease.queue for item in request.items]
    if request.HasField("lease_next"):
        queues += _lease_queues(request.lease_next)
    return queues


def _request(queues_of: QueuesOf, role: Role) -> MethodRule:
    return MethodRule(role, Scope.REQUEST, queues_of)


def _queue_field(request: Any) -> Iterable[str]:
    return (request.queue,)


def _group_queue(request: Any) -> Iterable[str]:
    return (request.group.queue,)


_BROKER = "/leasq.v1.BrokerService/"
_INSPECT = "/leasq.v1.InspectService/"
_SCHEDULE = "/leasq.v1.ScheduleService/"

METHOD_RULES: dict[str, MethodRule] = {
    _BROKER + "Enqueue": _request(
        lambda r: (_spec_queue(r.task.queue),), Role.PRODUCER),
    _BROKER + "EnqueueBatch": _request(
        lambda r: [_spec_queue(t.queue) for t in r.tasks], Role.PRODUCER),
    # Its messages are read after the call is let in: only a token for every queue may open
    # it (the SDK then sends unary Enqueue calls, checked one by one).
    _BROKER + "EnqueueStream": MethodRule(Role.PRODUCER, Scope.EVERY),
    _BROKER + "Lease": _request(_lease_queues, Role.WORKER),
    _BROKER + "Heartbeat": _request(lambda r: [lease.queue for lease in r.leases], Role.WORKER),
    _BROKER + "Ack": _request(_settle_queues, Role.WORKER),
    _BROKER + "Nack": _request(_settle_queues, Role.WORKER),
    # Likewise: the worker runtime then settles with unary Ack and Nack calls.
    _BROKER + "SettleStream": MethodRule(Role.WORKER, Scope.EVERY),
    **{_INSPECT + name: _request(_queue_field, Role.READER)
       for name in ("GetTask", "GetQueueStats", "ListTasks")},
    _INSPECT + "ListQueues": MethodRule(Role.READER),
    **{_INSPECT + name: _request(_queue_field, Role.READER)
       for name in ("GetQueueSettings", "ListGroups")},
    _INSPECT + "ListGroupMembers": _request(_group_queue, Role.READER),
    _INSPECT + "UpdateQueueSettings": _request(_queue_field, Role.ADMIN),
    **{_INSPECT + name: _request(_group_queue, Role.ADMIN)
       for name in ("FlushGroup", "DeleteGroup")},
    **{_INSPECT + name: _request(_queue_field, Role.ADMIN)
       for name in ("PauseQueue", "ResumeQueue", "CancelTask", "RunTask", "ArchiveTask",
                    "DeleteTask")},
    **{_INSPECT + name: _request(_queue_field, Role.READER)
       for name in ("GetQueueHistory", "SearchTasks")},
    **{_INSPECT + name: MethodRule(Role.READER) for name in ("ListWorkers", "GetServerInfo")},
    **{_INSPECT + name: _request(_queue_field, Role.ADMIN)
       for name in ("RunAllTasks", "ArchiveAllTasks", "DeleteAllTasks", "DeleteQueue")},
    **{_INSPECT + name: MethodRule(Role.ADMIN, Scope.EVERY)
       for name in ("QuietWorker", "StopWorker")},
    **{_SCHEDULE + name: MethodRule(Role.READER)
       for name in ("GetSchedule", "ListSchedules", "ListScheduleFires")},
    _SCHEDULE + "UpsertSchedule": _request(
        lambda r: (_spec_queue(r.schedule.template.queue),), Role.ADMIN),
    **{_SCHEDULE + name: MethodRule(Role.ADMIN, Scope.EVERY)
       for name in ("DeleteSchedule", "PauseSchedule", "ResumeSchedule", "TriggerSchedule")},
}  # fmt: skip
_UNLISTED = MethodRule(Role.ADMIN, Scope.EVERY)


def rule_for(method: str) -> MethodRule:
    """The rule of a full method name (``/leasq.v1.BrokerService/Enqueue``)."""
    return METHOD_RULES.get(method, _UNLISTED)


class Verdict(Enum):
    ALLOW = "allow"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer to one check; ``message`` explains a refusal (it never holds the token)."""

    verdict: Verdict
    message: str = ""
    principal: Principal | None = None

    @property
    def allowed(self) -> bool:
        return self.verdict is Verdict.ALLOW


@functools.lru_cache(maxsize=4096)
def _queue_allowed(patterns: tuple[str, ...], queue: str) -> bool:
    """A queue name matching a token pattern, or a Lease pattern one of them surely covers
    (see :func:`~leasq_broker.patterns.matching.covers`: conservative)."""
    if is_pattern(queue):
        return any(covers(pattern, queue) for pattern in patterns)
    return any(fnmatchcase(queue, pattern) for pattern in patterns)


def _short(method: str) -> str:
    return method.rsplit("/", 1)[-1] or method


class Authorizer:
    """Authenticates bearer tokens against a :class:`TokenStore` and authorizes calls.

    Used by the gRPC interceptor; meant to be reused as is by the HTTP edge (metrics,
    dashboard), which has no request messages: it passes the queues a route touches.
    """

    def __init__(self, tokens: TokenStore) -> None:
        self.tokens = tokens

    @classmethod
    def from_config(cls, config: BrokerConfig) -> Authorizer | None:
        """The authorizer of ``--auth-token`` and ``--auth-tokens-file``; None when both are
        unset (no auth). Raises TokenFileError for a bad tokens file."""
        if config.auth_token is None and config.auth_tokens_file is None:
            return None
        return cls(TokenStore(admin_token=config.auth_token, path=config.auth_tokens_file))

    def authenticate(self, token: str | None) -> Decision:
        """ALLOW with the principal of a known token, else UNAUTHENTICATED."""
        if token is None:
            return Decision(Verdict.UNAUTHENTICATED,
                            "missing bearer token: send metadata 'authorization: Bearer <token>'")
        principal = self.tokens.lookup(token)
        if principal is None:
            return Decision(Verdict.UNAUTHENTICATED, "invalid bearer token")
        return Decision(Verdict.ALLOW, principal=principal)

    def authorize(
        self, principal: Principal, method: str, queues: Iterable[str] = ()
    ) -> Decision:
        """May ``principal`` call ``method`` on ``queues``? (The role alone when none given.)"""
        rule = rule_for(method)
        if rule.role not in principal.roles and Role.ADMIN not in principal.roles:
            return Decision(Verdict.PERMISSION_DENIED,
                            f"token {principal.describe()} may not call {_short(method)}: "
                            f"needs role {rule.role}", principal)  # fmt: skip
        patterns = principal.queues
        if patterns is None or rule.scope is Scope.NONE:
            return Decision(Verdict.ALLOW, principal=principal)
        if rule.scope is Scope.EVERY:
            return Decision(Verdict.PERMISSION_DENIED,
                            f"token {principal.describe()} may not call {_short(method)}: "
                            f"needs role {rule.role} on every queue", principal)  # fmt: skip
        for queue in dict.fromkeys(queues):  # each once, in request order
            if not _queue_allowed(patterns, queue):
                what = ("queue pattern", "every queue it may match") if is_pattern(queue) else (
                    "queue", f"queue {queue!r}")
                return Decision(Verdict.PERMISSION_DENIED,
                                f"token {principal.describe()} may not call {_short(method)} "
                                f"on {what[0]} {queue!r}: needs role {rule.role} on "
                                f"{what[1]}", principal)  # fmt: skip
        return Decision(Verdict.ALLOW, principal=principal)

    def check(self, token: str | None, method: str, queues: Iterable[str] = ()) -> Decision:
        """Authenticate, then authorize: the one call an edge needs."""
        decision = self.authenticate(token)
        if decision.principal is None:
            return decision
        return self.authorize(decision.principal, method, queues)

    @staticmethod
    def needs_request(principal: Principal, method: str) -> bool:
        """Whether the queues of the request must still be checked after :meth:`authorize`."""
        return principal.queues is not None and rule_for(method).scope is Scope.REQUEST

"""Declare a task type once, use it on the producer and the worker side.

::

    @dataclass
    class Welcome:
        user_id: int
        locale: str = "en"

    WELCOME = TaskDef("email:welcome", Welcome, queue="email", max_retry=5, timeout=60)

    WELCOME.enqueue(client, Welcome(user_id=42))              # producer
    await WELCOME.enqueue_async(aclient, Welcome(user_id=42))  # asyncio producer
    client.enqueue_many([WELCOME.request(Welcome(user_id=i)) for i in range(100)])

Contract for worker runtimes (stable): ``task_def.name`` is the task type to register a handler
for, ``task_def.queue`` the queue its tasks go to by default, ``task_def.payload_type`` the
declared payload type, and ``task_def.decode(payload_bytes)`` turns the payload the producer
sent back into a ``payload_type`` value, raising :class:`PayloadError` when it cannot (retrying
will not help with such a task).
"""

from __future__ import annotations

import dataclasses
import functools
import json
import types
from typing import (
    TYPE_CHECKING,
    Any,
    Generic,
    TypeVar,
    Union,
    Unpack,
    get_args,
    get_origin,
    get_type_hints,
    overload,
)

from leasq_sdk.models import EnqueuedTask
from leasq_sdk.options import TaskOptions, TaskRequest
from leasq_sdk.schedules import Schedule

if TYPE_CHECKING:
    from leasq_sdk.aio import AsyncClient
    from leasq_sdk.client import Client

P = TypeVar("P")
# Task options that a schedule's template carries too.
_SCHEDULE_OPTIONS = ("max_retry", "timeout", "retention", "unique", "unique_key", "headers")


class PayloadError(ValueError):
    """A payload could not be decoded into the task's payload type."""


class TaskDef(Generic[P]):
    """A task type: its name, default queue and options, and its payload type.

    ``payload_type`` is a dataclass, ``dict`` (the default), ``list``, ``str``, ``bytes``, or a
    pydantic-style model (``model_validate_json``). Dataclass payloads travel as JSON and come
    back as the dataclass, nested dataclasses and lists of them included; unknown JSON keys are
    ignored so that producers may add fields before workers know them.
    """

    __slots__ = ("defaults", "name", "payload_type", "queue")

    @overload
    def __init__(
        self: TaskDef[dict[str, Any]],
        name: str,
        *,
        queue: str = ...,
        **defaults: Unpack[TaskOptions],
    ) -> None: ...

    @overload
    def __init__(
        self,
        name: str,
        payload_type: type[P],
        *,
        queue: str = ...,
        **defaults: Unpack[TaskOptions],
    ) -> None: ...

    def __init__(
        self,
        name: str,
        payload_type: Any = dict,
        *,
        queue: str = "default",
        **defaults: Unpack[TaskOptions],
    ) -> None:
        self.name = name
        self.payload_type: type[P] = payload_type
        self.queue = queue
        self.defaults: TaskOptions = defaults

    def __repr__(self) -> str:
        kind = getattr(self.payload_type, "__name__", repr(self.payload_type))
        return f"TaskDef({self.name!r}, {kind}, queue={self.queue!r})"

    def options(self, **overrides: Unpack[TaskOptions]) -> TaskOptions:
        """The defaults with ``overrides`` applied; headers are merged, the rest replaced."""
        merged: TaskOptions = {**self.defaults, **overrides}
        if "headers" in self.defaults and "headers" in overrides:
            merged["headers"] = {**self.defaults["headers"], **overrides["headers"]}
        return merged

    def request(
        self, payload: P, *, queue: str | None = None, **overrides: Unpack[TaskOptions]
    ) -> TaskRequest:
        """A :class:`TaskRequest` of this type, for :meth:`Client.enqueue_many`."""
        options = self.options(**overrides)
        return TaskRequest(self.name, payload, queue=queue or self.queue, **options)

    def enqueue(
        self,
        client: Client,
        payload: P,
        *,
        queue: str | None = None,
        rpc_timeout: float | None = None,
        **overrides: Unpack[TaskOptions],
    ) -> EnqueuedTask:
        """Enqueue one task of this type with the sync client (``rpc_timeout``: call deadline)."""
        options = self.options(**overrides)
        return client.enqueue(self.name, payload, queue=queue or self.queue,
                              rpc_timeout=rpc_timeout, **options)

    async def enqueue_async(
        self,
        client: AsyncClient,
        payload: P,
        *,
        queue: str | None = None,
        rpc_timeout: float | None = None,
        **overrides: Unpack[TaskOptions],
    ) -> EnqueuedTask:
        """Enqueue one task of this type with the asyncio client (``rpc_timeout``: deadline)."""
        options = self.options(**overrides)
        return await client.enqueue(self.name, payload, queue=queue or self.queue,
                                    rpc_timeout=rpc_timeout, **options)

    def schedule(
        self,
        name: str,
        spec: str,
        payload: P | None = None,
        *,
        queue: str | None = None,
        time_zone: str = "UTC",
        **policies: Any,
    ) -> Schedule:
        """A :class:`Schedule` that fires this task type (declare it next to the task)::

            REPORT_MONTHLY = REPORT.schedule("monthly-report", "0 9 1 * *",
                                             Report(month="previous"), time_zone="Europe/Berlin")
            client.upsert_schedule(REPORT_MONTHLY)

        The task definition's defaults (max_retry, timeout, retention, unique, unique_key,
        headers) become the template's; ``policies`` are the other :class:`Schedule` fields
        (jitter, catch_up, catch_up_window, overlap, paused, deadline_after).
        """
        inherited = {key: value for key, value in self.defaults.items()
                     if key in _SCHEDULE_OPTIONS}
        return Schedule(name, spec, self.name, b"" if payload is None else payload,
                        queue=queue or self.queue, time_zone=time_zone,
                        **{**inherited, **policies})

    def decode(self, data: bytes) -> P:
        """The payload as ``payload_type``; :class:`PayloadError` when it does not fit."""
        kind: Any = self.payload_type
        if kind is bytes:
            return data  # type: ignore[return-value]
        try:
            if kind is str:
                return data.decode()  # type: ignore[return-value]
            validate = getattr(kind, "model_validate_json", None)
            if callable(validate):
                return validate(data)  # type: ignore[no-any-return]
            value = _from_json(kind, json.loads(data))
        except PayloadError:
            raise
        except Exception as err:  # whatever the type's constructor raises
            raise PayloadError(f"{self.name}: payload does not decode as {kind!r}: {err}") from err
        if isinstance(kind, type) and not isinstance(value, kind):
            raise PayloadError(f"{self.name}: payload is {type(value).__name__}, not {kind!r}")
        return value  # type: ignore[no-any-return]


def _from_json(kind: Any, value: Any) -> Any:
    """``value`` (parsed JSON) shaped into ``kind``: dataclasses, lists, dicts, optionals."""
    if isinstance(kind, type) and dataclasses.is_dataclass(kind) and isinstance(value, dict):
        hints = _field_types(kind)
        known = {name: _from_json(hints[name], value[name]) for name in hints if name in value}
        return kind(**known)
    origin, args = get_origin(kind), get_args(kind)
    if origin is list and args and isinstance(value, list):
        return [_from_json(args[0], item) for item in value]
    if origin is dict and len(args) == 2 and isinstance(value, dict):
        return {key: _from_json(args[1], item) for key, item in value.items()}
    if origin in (Union, types.UnionType) and value is not None:
        for option in args:
            if isinstance(option, type) and dataclasses.is_dataclass(option):
                return _from_json(option, value)
    return value


@functools.lru_cache(maxsize=256)
def _field_types(kind: type[Any]) -> dict[str, Any]:
    """Resolved types of a dataclass's init fields (cached: hints resolution is slow)."""
    hints = get_type_hints(kind)
    return {f.name: hints.get(f.name, Any) for f in dataclasses.fields(kind) if f.init}

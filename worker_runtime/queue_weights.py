"""How the worker names its queues in a LeaseRequest: a name, or a pattern.

``--queue 'tenant.*'=2`` serves every queue matching ``tenant.*`` (now and as queues appear)
with one weight for the whole pattern. A queue name never holds ``*`` or ``?``, so a spec with
either is a pattern.
"""

from __future__ import annotations

from leasq.v1 import broker_service_pb2 as pb


def is_pattern(name: str) -> bool:
    return "*" in name or "?" in name


def queue_weight(name: str, weight: int) -> pb.QueueWeight:
    """The LeaseRequest entry of a queue name or pattern."""
    if is_pattern(name):
        return pb.QueueWeight(pattern=name, weight=weight)
    return pb.QueueWeight(queue=name, weight=weight)

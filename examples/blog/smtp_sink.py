"""A local SMTP server that accepts every message and keeps it: the blog's mail server in
development and in tests.

``python -m examples.blog.smtp_sink --port 8025 [--save-dir DIR]`` prints one line per message
(and writes it to ``DIR/<n>.eml``). In a test, :class:`SmtpSink` runs it on a thread of the test
process; it can be stopped and started again on the same port to play an SMTP outage, and
:meth:`Mailbox.wait_for` blocks until the expected messages arrived. The sink deduplicates
nothing, so a test sees every message the workers really sent.
"""

from __future__ import annotations

import argparse
import email
import email.policy
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller

_URL = re.compile(r"https?://[^\s\"'<>]+")


@dataclass(frozen=True, slots=True)
class Received:
    """One message as the sink received it."""

    mail_from: str
    recipients: tuple[str, ...]
    message: EmailMessage

    @property
    def text(self) -> str:
        """The plain-text body."""
        part = self.message.get_body(preferencelist=("plain",))
        return "" if part is None else str(part.get_content())

    @property
    def links(self) -> list[str]:
        """Every URL of the plain-text body, in order."""
        return _URL.findall(self.text)


class Mailbox:
    """The aiosmtpd handler: stores messages and wakes whoever waits for them."""

    def __init__(
        self, save_dir: Path | None = None, on_message: Callable[[Received], None] | None = None
    ) -> None:
        self._received: list[Received] = []
        self._changed = threading.Condition()
        self._save_dir = save_dir
        self._on_message = on_message

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        received = Received(envelope.mail_from, tuple(envelope.rcpt_tos), message)
        with self._changed:
            self._received.append(received)
            number = len(self._received)
            self._changed.notify_all()
        if self._save_dir is not None:
            (self._save_dir / f"{number:05d}.eml").write_bytes(envelope.content)
        if self._on_message is not None:
            self._on_message(received)
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[Received]:
        """Everything received so far (a copy)."""
        with self._changed:
            return list(self._received)

    def wait_for(
        self, predicate: Callable[[list[Received]], bool], timeout: float
    ) -> list[Received]:
        """Block until ``predicate(messages)`` holds; the messages then. TimeoutError if not."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self._received):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"mailbox holds {len(self._received)} messages")
                self._changed.wait(left)
            return list(self._received)


class SmtpSink:
    """An SMTP server on ``host:port`` feeding one :class:`Mailbox`; restartable."""

    def __init__(self, host: str, port: int, mailbox: Mailbox | None = None) -> None:
        self.host = host
        self.port = port
        self.mailbox = mailbox or Mailbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        """Listen (again) on the same address; returns once the server answers."""
        if self._controller is None:
            controller = Controller(self.mailbox, hostname=self.host, port=self.port)
            controller.start()
            self._controller = controller

    def stop(self) -> None:
        """Stop listening: connections are refused until :meth:`start`."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _print_summary(received: Received) -> None:
    to = ", ".join(received.recipients)
    link = received.links[0] if received.links else "-"
    print(f"[smtp-sink] to={to} subject={received.message['Subject']!r} link={link}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A local SMTP sink that prints what it gets.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8025)
    parser.add_argument("--save-dir", type=Path, default=None, help="write each message here")
    args = parser.parse_args(argv)
    if args.save_dir is not None:
        args.save_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    with SmtpSink(args.host, args.port, Mailbox(args.save_dir, _print_summary)):
        print(f"[smtp-sink] listening on {args.host}:{args.port}", flush=True)
        stop.wait()


if __name__ == "__main__":
    main()

"""``make demo``: the whole blog on this machine, with what to curl.

Starts, in order: a broker with its own Redis (data in ``<dir>/leasq``, on a free port), the
SMTP sink (messages printed here and saved in ``<dir>/mail``), the email and the analytic
workers, and the HTTP app. Logs go to ``<dir>/logs``. Ctrl-C (or SIGTERM) stops everything in
reverse order; the data stays for the next run (delete ``<dir>`` to start over).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from examples.blog.settings import Settings

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0


class Children:
    """The processes of the demo, stopped together and in reverse order."""

    def __init__(self, logs: Path, env: dict[str, str]) -> None:
        self.logs = logs
        self.env = env
        self.running: list[tuple[str, subprocess.Popen[bytes]]] = []

    def start(self, name: str, *args: str, show_output: bool = False) -> subprocess.Popen[bytes]:
        """Run ``python args...`` from the repository root; output to ``logs/<name>.log``."""
        with (self.logs / f"{name}.log").open("ab") as log:
            stdout = None if show_output else log
            process = subprocess.Popen(
                [sys.executable, *args], cwd=REPO, env=self.env, stdout=stdout, stderr=log
            )
        self.running.append((name, process))
        return process

    def first_exited(self) -> str | None:
        """The name of a process that has exited, if one has."""
        return next((name for name, p in self.running if p.poll() is not None), None)

    def stop(self) -> None:
        for _, process in reversed(self.running):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(STOP_TIMEOUT_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()


def wait_for(ready: Callable[[], bool], children: Children, what: str) -> None:
    """Poll ``ready`` until it holds; fail if a child exits or time runs out first."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not ready():
        exited = children.first_exited()
        if exited is not None:
            raise SystemExit(f"{exited} exited; see {children.logs / exited}.log")
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}; see the logs in {children.logs}")
        time.sleep(0.1)


def http_ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except urllib.error.HTTPError:
        return True  # it answered
    except OSError:
        return False


def start_all(children: Children, workdir: Path, http_port: int, smtp_port: int) -> Settings:
    ready_file = workdir / "broker.addr"
    ready_file.unlink(missing_ok=True)
    children.start(
        "broker", "-m", "leasq_broker", "serve", "--listen", "127.0.0.1:0",
        "--data-dir", str(workdir / "leasq"), "--ready-file", str(ready_file),
    )  # fmt: skip
    wait_for(ready_file.exists, children, "the broker")
    settings = Settings.from_env(
        {
            **os.environ,
            "LEASQ_BROKER": ready_file.read_text().strip(),
            "BLOG_DB": str(workdir / "blog.db"),
            "BLOG_PUBLIC_URL": f"http://127.0.0.1:{http_port}",
            "BLOG_SMTP_PORT": str(smtp_port),
        }
    )
    children.env.update(settings.to_env())
    children.start(
        "smtp_sink", "-m", "examples.blog.smtp_sink", "--port", str(smtp_port),
        "--save-dir", str(workdir / "mail"), show_output=True,
    )  # fmt: skip
    for module, queue in (("email_worker", "email"), ("analytic_worker", "analytic")):
        children.start(
            module, "-m", "leasq_worker", f"examples.blog.{module}:registry",
            "--broker", settings.broker, "--queue", queue, "--log-format", "console",
        )  # fmt: skip
    children.start("app", "-m", "examples.blog.app", "--port", str(http_port))
    wait_for(lambda: http_ready(f"{settings.public_url}/posts/0"), children, "the HTTP app")
    return settings


def instructions(settings: Settings, workdir: Path) -> str:
    url, token = settings.public_url, settings.admin_token
    json = "-H 'content-type: application/json'"
    smtp = f"{settings.smtp_host}:{settings.smtp_port}"
    return f"""
The blog is up.
  HTTP app   {url}
  broker     {settings.broker} (data in {workdir}/leasq)
  SMTP sink  {smtp} (mail is printed here, saved in {workdir}/mail)
  logs       {workdir}/logs/

Subscribe three readers, publish a post (admin token), and watch the emails arrive below:
  for who in ada bob cy; do
    curl -s {json} -d "{{\\"email\\": \\"$who@example.com\\"}}" {url}/subscribers; echo
  done
  curl -s {json} -H 'Authorization: Bearer {token}' \\
    -d '{{"title": "Hello", "body": "The first post."}}' {url}/posts; echo

Follow a link from an email (it redirects to the post), read the post, see the stats:
  curl -sL '<link from an email>'; echo
  curl -s {url}/posts/1; echo
  curl -s {url}/posts/1/stats; echo

Ctrl-C stops everything.
"""


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Run the blog example with all its parts.")
    parser.add_argument("--dir", type=Path, default=Path(".blog"), help="data and logs")
    parser.add_argument("--http-port", type=int, default=8000)
    parser.add_argument("--smtp-port", type=int, default=8025)
    args = parser.parse_args(argv)
    workdir = args.dir.resolve()
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
    children = Children(workdir / "logs", env)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        settings = start_all(children, workdir, args.http_port, args.smtp_port)
        print(instructions(settings, workdir), flush=True)
        while not stop.wait(0.5):
            exited = children.first_exited()
            if exited is not None:
                print(f"{exited} exited; see {children.logs / exited}.log", file=sys.stderr)
                break
    finally:
        print("stopping...", flush=True)
        children.stop()


if __name__ == "__main__":
    main()

"""Configuration of the blog, read from the environment when a process first needs it.

The HTTP app and both workers read the same variables, so one environment describes a whole
deployment (``make demo`` and the end-to-end test set them for every process they start).
Nothing is read at import time: a module can be imported, and its registry inspected, without
any of these set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a blog process needs to know about its surroundings."""

    db_path: Path
    broker: str
    broker_token: str | None
    admin_token: str
    link_secret: str
    public_url: str
    smtp_host: str
    smtp_port: int
    mail_from: str
    retry_base: float
    retry_cap: float

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``env`` (default: ``os.environ``), with development defaults."""
        env = os.environ if env is None else env
        return cls(
            db_path=Path(env.get("BLOG_DB", ".blog/blog.db")),
            broker=env.get("LEASQ_BROKER", "127.0.0.1:50051"),
            broker_token=env.get("LEASQ_TOKEN") or None,
            admin_token=env.get("BLOG_ADMIN_TOKEN", "dev-admin-token"),
            link_secret=env.get("BLOG_LINK_SECRET", "dev-link-secret"),
            public_url=env.get("BLOG_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/"),
            smtp_host=env.get("BLOG_SMTP_HOST", "127.0.0.1"),
            smtp_port=int(env.get("BLOG_SMTP_PORT", "8025")),
            mail_from=env.get("BLOG_MAIL_FROM", "blog@example.com"),
            retry_base=float(env.get("BLOG_RETRY_BASE", "1.0")),
            retry_cap=float(env.get("BLOG_RETRY_CAP", "60.0")),
        )

    def to_env(self) -> dict[str, str]:
        """The environment variables that make :meth:`from_env` return these settings."""
        env = {
            "BLOG_DB": str(self.db_path),
            "LEASQ_BROKER": self.broker,
            "BLOG_ADMIN_TOKEN": self.admin_token,
            "BLOG_LINK_SECRET": self.link_secret,
            "BLOG_PUBLIC_URL": self.public_url,
            "BLOG_SMTP_HOST": self.smtp_host,
            "BLOG_SMTP_PORT": str(self.smtp_port),
            "BLOG_MAIL_FROM": self.mail_from,
            "BLOG_RETRY_BASE": str(self.retry_base),
            "BLOG_RETRY_CAP": str(self.retry_cap),
        }
        if self.broker_token:
            env["LEASQ_TOKEN"] = self.broker_token
        return env

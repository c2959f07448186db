"""Fixtures for security tests: the session's certificates and a broker's certificate files."""

from __future__ import annotations

from pathlib import Path

import pytest
from tls_testing import Pki, ServerFiles


@pytest.fixture(scope="session")
def pki() -> Pki:
    """Two CAs and the server, client, expired and foreign certificates they issued."""
    return Pki.create()


@pytest.fixture
def server_files(tmp_path: Path, pki: Pki) -> ServerFiles:
    """The broker's certificate, key and client CA (all by ``pki.ca``) in files of this test."""
    return ServerFiles.write(tmp_path, pki)

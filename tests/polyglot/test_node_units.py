"""The Node example's own unit tests (flag parsing, error-detail decoding) run with the suite."""

from __future__ import annotations

import subprocess

from polyglot.node_interop_support import NODE_DIR, node_executable


def test_the_node_examples_unit_tests_pass() -> None:
    node = node_executable()
    done = subprocess.run(
        [node, "--test", "test/"],
        cwd=NODE_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr

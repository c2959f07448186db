"""deploy/Dockerfile copies only files that exist and the build context keeps, and runs a
``leasq serve`` command the broker accepts."""

from __future__ import annotations

import fnmatch
import json

from deploy_testing import DEPLOY, REPO, check_serve, dockerfile_instructions, image_env

DOCKERIGNORE = DEPLOY / "Dockerfile.dockerignore"


def ignored(path: str) -> bool:
    patterns = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()
                if line.strip() and not line.startswith("#")]  # fmt: skip
    parts = path.split("/")
    return any(fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(parts[0], pattern)
               for pattern in patterns)  # fmt: skip


def copy_sources() -> list[str]:
    """The build-context sources of every COPY/ADD (not those copied from another stage)."""
    sources: list[str] = []
    for instruction, arguments in dockerfile_instructions():
        words = arguments.split()
        if instruction in {"COPY", "ADD"} and not any(w.startswith("--from") for w in words):
            sources += [word for word in words[:-1] if not word.startswith("--")]
    return sources


def test_every_copy_source_exists_in_the_build_context() -> None:
    sources = copy_sources()
    assert "deploy/healthcheck.py" in sources
    for source in sources:
        assert list(REPO.glob(source)), f"COPY {source}: no such file in the repository"
        assert not ignored(source), f"COPY {source}: excluded by {DOCKERIGNORE.name}"


def test_the_image_command_is_a_leasq_serve_command_the_broker_accepts() -> None:
    (command,) = [args for instruction, args in dockerfile_instructions() if instruction == "CMD"]
    check_serve(json.loads(command), image_env())

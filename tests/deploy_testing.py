"""Reading the files under deploy/ as the tools that use them would: kustomize, YAML, the CLIs.

``kubectl kustomize`` renders the Kubernetes overlays (no cluster needed); the commands and
``LEASQ_*`` variables of the manifests and the compose file are parsed by the real ``leasq
serve`` and ``leasq worker`` parsers, so a renamed flag fails here rather than in a pod.
"""

from __future__ import annotations

import functools
import json
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]

from leasq_broker import cli as broker_cli
from leasq_worker import cli as worker_cli

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"
KUBERNETES = DEPLOY / "kubernetes"
OVERLAYS = ("embedded", "external-redis")
DOCKERFILE = DEPLOY / "Dockerfile"
# What a Secret reference stands for when a command's variables are checked.
SECRET_PLACEHOLDER = {"LEASQ_REDIS_URL": "redis://redis:6379/0"}


def kustomize(directory: Path) -> list[dict[str, Any]]:
    """The objects ``kubectl kustomize directory`` renders; fails the test, saying why, when
    kubectl is missing or the kustomization is broken."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail(
            "kubectl not found on PATH: the deploy checks render deploy/kubernetes with "
            "`kubectl kustomize` (kubectl 1.27+, no cluster needed); install kubectl"
        )
    done = subprocess.run([kubectl, "kustomize", str(directory)], capture_output=True,
                          text=True, timeout=60, check=False)  # fmt: skip
    if done.returncode != 0:
        pytest.fail(f"kubectl kustomize {directory} failed:\n{done.stderr}")
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@functools.cache
def _rendered_overlay(name: str) -> str:
    return json.dumps(kustomize(KUBERNETES / "overlays" / name))


def overlay(name: str) -> list[dict[str, Any]]:
    """The rendered overlay (rendered once per session; a fresh copy each call)."""
    objects: list[dict[str, Any]] = json.loads(_rendered_overlay(name))
    return objects


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (found,) = [obj for obj in objects if obj["kind"] == kind]
    return found


def broker_container(objects: list[dict[str, Any]]) -> dict[str, Any]:
    (container,) = one(objects, "Deployment")["spec"]["template"]["spec"]["containers"]
    return container


def container_env(container: Mapping[str, Any]) -> dict[str, str]:
    """The container's variables; a ``valueFrom`` one stands for a plausible value."""
    return {var["name"]: var.get("value", SECRET_PLACEHOLDER.get(var["name"], "x"))
            for var in container.get("env", [])}  # fmt: skip


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of deploy/Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines
            if line and not line.startswith("#")]  # fmt: skip


def image_env() -> dict[str, str]:
    """The ``ENV`` of the image (``KEY=value`` pairs)."""
    env: dict[str, str] = {}
    for instruction, arguments in dockerfile_instructions():
        if instruction == "ENV":
            env.update(pair.split("=", 1) for pair in arguments.split())
    return env


def serve_variables() -> set[str]:
    return {flag.env for flag in broker_cli.SERVE_FLAGS} | {broker_cli.READY_FILE.env}


def worker_variables() -> set[str]:
    """The ``LEASQ_*`` variables ``leasq worker`` reads, as its help names them."""
    helps = " ".join(action.help or "" for action in worker_cli.build_parser()._actions)
    return set(re.findall(r"env (LEASQ_[A-Z_]+)", helps))


def check_serve(argv: list[str], env: Mapping[str, str]) -> None:
    """``argv`` is a ``leasq serve`` command that the broker's parser takes with ``env``."""
    assert argv[:2] == ["leasq", "serve"], argv
    unknown = {name for name in env if name.startswith("LEASQ_")} - serve_variables()
    assert not unknown, f"not leasq serve variables: {sorted(unknown)}"
    try:
        args = broker_cli.build_parser().parse_args(argv[1:])
    except SystemExit:
        pytest.fail(f"leasq serve refuses {argv} (see its usage error above)")
    broker_cli.resolve_config(args, {**image_env(), **env})


def check_worker(argv: list[str], env: Mapping[str, str]) -> Any:
    """``argv`` is a ``leasq worker`` command its parser takes; returns the parsed arguments."""
    assert argv[:2] == ["leasq", "worker"], argv
    unknown = {name for name in env if name.startswith("LEASQ_")} - worker_variables()
    assert not unknown, f"not leasq worker variables: {sorted(unknown)}"
    try:
        return worker_cli.build_parser().parse_args(argv[2:])
    except SystemExit:
        pytest.fail(f"leasq worker refuses {argv} (see its usage error above)")


def option(argv: list[str], name: str) -> str | None:
    """The value given to ``--name`` in ``argv`` (``--name value`` or ``--name=value``)."""
    for index, word in enumerate(argv):
        if word == name and index + 1 < len(argv):
            return argv[index + 1]
        if word.startswith(name + "="):
            return word.split("=", 1)[1]
    return None

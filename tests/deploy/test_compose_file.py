"""deploy/compose.yaml parses, builds Leasq only from deploy/Dockerfile, pulls only the official
Redis image, names paths that exist and runs commands the real CLIs accept."""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped, unused-ignore]
from deploy_testing import DEPLOY, DOCKERFILE, check_serve, check_worker, option

from leasq_worker import Registry

COMPOSE = DEPLOY / "compose.yaml"
OFFICIAL_REDIS = re.compile(r"(docker\.io/(library/)?)?redis:[\w.-]+")


def services() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load(COMPOSE.read_text())
    found: dict[str, dict[str, Any]] = document["services"]
    return found


def named_volumes() -> set[str]:
    return set(yaml.safe_load(COMPOSE.read_text()).get("volumes") or {})


def running(command: str) -> dict[str, dict[str, Any]]:
    """The services whose command is ``leasq <command> ...``."""
    return {name: service for name, service in services().items()
            if service.get("command", [])[:2] == ["leasq", command]}  # fmt: skip


def test_leasq_services_build_from_the_dockerfile_and_only_official_redis_is_pulled() -> None:
    for name, service in services().items():
        if "build" not in service:
            assert OFFICIAL_REDIS.fullmatch(service["image"]), name
            continue
        context = (DEPLOY / service["build"]["context"]).resolve()
        assert context.is_dir(), name
        assert (context / service["build"]["dockerfile"]).resolve() == DOCKERFILE, name


def test_redis_appends_to_an_aof_fsynced_every_second_on_a_volume() -> None:
    redis = services()["redis"]
    command = redis["command"]
    assert command[0] == "redis-server"
    assert option(command, "--appendonly") == "yes"
    assert option(command, "--appendfsync") == "everysec"
    (volume,) = redis["volumes"]
    source, target = volume.split(":")[:2]
    assert source in named_volumes() and target == "/data"


def test_two_brokers_share_the_redis_and_serve_the_dashboard_one_on_host_loopback() -> None:
    brokers = running("serve")
    assert len(brokers) == 2
    for name, broker in brokers.items():
        assert broker["environment"]["LEASQ_REDIS_URL"].startswith("redis://redis:"), name
        assert "--dashboard" in broker["command"], name
        assert option(broker["command"], "--http-listen") == "0.0.0.0:9464", name
        assert broker["depends_on"]["redis"]["condition"] == "service_healthy", name
    published = {name: broker["ports"] for name, broker in brokers.items() if "ports" in broker}
    ((name, ports),) = published.items()
    assert all(port.startswith("127.0.0.1:") for port in ports), ports
    assert "127.0.0.1:9464:9464" in ports


def test_every_service_has_a_health_check_and_a_restart_policy() -> None:
    copied_to = {line.split()[-1] for line in DOCKERFILE.read_text().splitlines()
                 if line.startswith("COPY deploy/healthcheck.py")}  # fmt: skip
    for name, service in services().items():
        assert service["restart"] in {"always", "unless-stopped", "on-failure"}, name
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD" and len(test) > 1, name
    for name in running("serve"):
        assert services()[name]["healthcheck"]["test"][2] in copied_to, name


def test_every_bind_mount_source_exists_and_every_volume_is_declared() -> None:
    for name, service in services().items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith((".", "/")):
                assert (DEPLOY / source).exists(), f"{name}: {source}"
            else:
                assert source in named_volumes(), f"{name}: {source}"


def test_the_worker_runs_a_blog_example_registry_that_handles_its_queue() -> None:
    (worker,) = running("worker").values()
    args = check_worker(worker["command"], worker.get("environment", {}))
    module, attribute = args.registry.split(":")
    # The module is found under the working dir, through the checkout's bind mount.
    mounts = {target: (DEPLOY / source).resolve() for source, target, *_ in
              (volume.split(":") for volume in worker["volumes"])}  # fmt: skip
    relative = Path(*module.split(".")).with_suffix(".py")
    top = f"{worker['working_dir']}/{relative.parts[0]}"
    assert (mounts[top] / Path(*relative.parts[1:])).is_file(), module
    registry = getattr(importlib.import_module(module), attribute)
    assert isinstance(registry, Registry)
    tasks = importlib.import_module(module.rsplit(".", 1)[0] + ".tasks")
    queues = {definition.queue for definition in vars(tasks).values()
              if getattr(definition, "name", None) in registry.handlers}  # fmt: skip
    assert queues == {queue for queue, _ in args.queues}


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_commands_and_variables_are_real_leasq_flags(command: str) -> None:
    check = check_serve if command == "serve" else check_worker
    for service in running(command).values():
        check(service["command"], service.get("environment", {}))

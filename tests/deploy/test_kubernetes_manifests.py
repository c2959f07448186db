"""deploy/kubernetes: every overlay renders with ``kubectl kustomize`` and holds what the deploy
README promises (probes, shutdown timing, disruption budget, selectors, metrics, security)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from deploy_testing import (
    DEPLOY,
    KUBERNETES,
    OVERLAYS,
    REPO,
    broker_container,
    check_serve,
    container_env,
    dockerfile_instructions,
    image_env,
    kustomize,
    one,
    option,
    overlay,
)


def pod_spec(objects: list[dict[str, Any]]) -> dict[str, Any]:
    spec: dict[str, Any] = one(objects, "Deployment")["spec"]["template"]["spec"]
    return spec


def pod_labels(objects: list[dict[str, Any]]) -> dict[str, str]:
    labels: dict[str, str] = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    return labels


def container_ports(objects: list[dict[str, Any]]) -> dict[str, int]:
    return {port["name"]: port["containerPort"] for port in broker_container(objects)["ports"]}


@pytest.mark.parametrize("name", OVERLAYS)
def test_every_overlay_renders_a_deployment_service_and_disruption_budget(name: str) -> None:
    kinds = {obj["kind"] for obj in overlay(name)}
    assert kinds >= {"Deployment", "Service", "PodDisruptionBudget"}


@pytest.mark.parametrize("name", OVERLAYS)
def test_probes_ask_the_grpc_health_service_on_a_container_port(name: str) -> None:
    objects = overlay(name)
    container = broker_container(objects)
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        grpc = container[probe]["grpc"]
        assert grpc["port"] in container_ports(objects).values(), probe
        assert option(container["args"], "--listen") == f"0.0.0.0:{grpc['port']}"
    assert container["readinessProbe"]["grpc"]["service"] == "leasq.v1.BrokerService"


@pytest.mark.parametrize("name", OVERLAYS)
def test_pre_stop_and_grace_end_before_the_termination_grace_period(name: str) -> None:
    objects = overlay(name)
    container = broker_container(objects)
    sleep, seconds = container["lifecycle"]["preStop"]["exec"]["command"]
    assert sleep == "sleep"
    env = {**image_env(), **container_env(container)}
    grace = option(container["args"], "--grace") or env["LEASQ_GRACE"]
    assert float(seconds) + float(grace) < pod_spec(objects)["terminationGracePeriodSeconds"]


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_service_deployment_and_disruption_budget_select_the_broker_pods(name: str) -> None:
    objects = overlay(name)
    labels = pod_labels(objects).items()
    service = one(objects, "Service")["spec"]
    budget = one(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"]
    selectors = {
        "Deployment": one(objects, "Deployment")["spec"]["selector"]["matchLabels"],
        "PodDisruptionBudget": budget,
        "Service": service["selector"],
    }
    for kind, selector in selectors.items():
        assert selector and selector.items() <= labels, kind
    service_ports = {port["port"]: port["targetPort"] for port in service["ports"]}
    assert {service_ports[50051], service_ports[9464]} <= set(container_ports(objects))
    assert container_ports(objects)[service_ports[9464]] == 9464


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_metrics_port_is_annotated_and_served(name: str) -> None:
    objects = overlay(name)
    template = one(objects, "Deployment")["spec"]["template"]
    annotations = template["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/path"] == "/metrics"
    port = int(annotations["prometheus.io/port"])
    assert port in container_ports(objects).values()
    assert option(broker_container(objects)["args"], "--http-listen") == f"0.0.0.0:{port}"


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_broker_has_resource_requests_and_a_memory_limit(name: str) -> None:
    resources = broker_container(overlay(name))["resources"]
    assert resources["requests"]["cpu"] and resources["requests"]["memory"]
    assert resources["limits"]["memory"]


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_broker_runs_as_the_image_user_on_a_read_only_root(name: str) -> None:
    objects = overlay(name)
    container = broker_container(objects)
    pod = pod_spec(objects)["securityContext"]
    (user,) = [args for instruction, args in dockerfile_instructions() if instruction == "USER"]
    assert pod["runAsNonRoot"] is True and str(pod["runAsUser"]) == user
    context = container["securityContext"]
    assert context["readOnlyRootFilesystem"] is True
    assert context["allowPrivilegeEscalation"] is False
    mounts = {mount["mountPath"] for mount in container["volumeMounts"]}
    data_dir = {**image_env(), **container_env(container)}["LEASQ_DATA_DIR"]
    assert {data_dir, "/tmp"} <= mounts


@pytest.mark.parametrize("name", OVERLAYS)
def test_the_broker_command_and_variables_are_leasq_serve_flags(name: str) -> None:
    container = broker_container(overlay(name))
    check_serve(container["args"], container_env(container))


def test_the_embedded_overlay_runs_one_recreated_broker_with_its_data_dir_on_a_claim() -> None:
    objects = overlay("embedded")
    spec = one(objects, "Deployment")["spec"]
    assert spec["replicas"] == 1 and spec["strategy"]["type"] == "Recreate"
    container = broker_container(objects)
    assert "LEASQ_REDIS_URL" not in container_env(container)  # its own redis-server
    data_dir = {**image_env(), **container_env(container)}["LEASQ_DATA_DIR"]
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == data_dir]
    (volume,) = [v for v in pod_spec(objects)["volumes"] if v["name"] == mount["name"]]
    assert set(volume) == {"name", "persistentVolumeClaim"}
    claim = one(objects, "PersistentVolumeClaim")
    assert claim["metadata"]["name"] == volume["persistentVolumeClaim"]["claimName"]


def test_the_external_overlay_runs_three_brokers_reading_the_redis_url_from_a_secret() -> None:
    objects = overlay("external-redis")
    assert one(objects, "Deployment")["spec"]["replicas"] == 3
    (redis_url,) = [var for var in broker_container(objects)["env"]
                    if var["name"] == "LEASQ_REDIS_URL"]  # fmt: skip
    assert set(redis_url) == {"name", "valueFrom"}
    assert redis_url["valueFrom"]["secretKeyRef"]["name"]
    assert not [obj for obj in objects if obj["kind"] == "PersistentVolumeClaim"]


def test_the_autoscaling_component_scales_the_external_overlay_deployment(tmp_path: Path) -> None:
    # kustomize takes only relative paths: the overlay with the component enabled.
    overlay_dir = os.path.relpath(KUBERNETES / "overlays" / "external-redis", tmp_path)
    component = os.path.relpath(KUBERNETES / "components" / "autoscaling", tmp_path)
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources: [{overlay_dir}]\ncomponents: [{component}]\n"
    )
    objects = kustomize(tmp_path)
    target = one(objects, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    deployment = one(objects, "Deployment")
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])


@pytest.mark.parametrize("document", ["deploy/README.md", "README.md", "docs/metrics.md"])
def test_the_docs_name_only_deploy_files_that_exist(document: str) -> None:
    text = (REPO / document).read_text()
    base = DEPLOY if document.startswith("deploy/") else REPO
    named = re.findall(r"`((?:deploy/|kubernetes/|prometheus/|grafana/)[\w./-]+)`", text)
    missing = [path for path in named if not (base / path).exists() and not (REPO / path).exists()]
    assert named and not missing, missing

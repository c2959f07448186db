"""The Prometheus alert rules and the Grafana dashboard parse and use only exported metrics."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

import leasq_broker.observability.metrics  # noqa: F401  (registers the broker's metrics)
from leasq_broker.keys import Keys
from leasq_broker.observability.queue_stats import QueueStats
from leasq_broker.reader import TaskReader
from leasq_worker.metrics import registered as worker_metrics

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
ALERTS = DEPLOY / "prometheus" / "alerts.yml"
DASHBOARD = DEPLOY / "grafana" / "leasq-dashboard.json"
METRIC = re.compile(r"\bleasq_[a-z_]+")
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def load_alerts() -> Any:
    """With PyYAML when installed; else as JSON, which the file is written in (YAML's JSON
    form, with comment lines)."""
    try:
        import yaml  # type: ignore[import-untyped, unused-ignore]
    except ImportError:
        text = "".join(line for line in ALERTS.read_text().splitlines(keepends=True)
                       if not line.lstrip().startswith("#"))  # fmt: skip
        return json.loads(text)
    return yaml.safe_load(ALERTS.read_text())


def exported_names() -> set[str]:
    """Every sample name the broker and the worker can expose."""
    worker_metrics()
    families = [*REGISTRY.collect(), *QueueStats(TaskReader(Redis(), Keys()), lambda: 0).collect()]
    return {family.name + suffix for family in families if family.name.startswith("leasq_")
            for suffix in SUFFIXES.get(family.type, ("",))}  # fmt: skip


def test_alert_rules_have_prometheus_rule_file_structure() -> None:
    document = load_alerts()
    (group,) = document["groups"]
    assert isinstance(group["name"], str) and group["name"]
    rules = group["rules"]
    names = {rule["alert"] for rule in rules}
    assert names >= {"LeasqBrokerDown", "LeasqQueueLatencyHigh", "LeasqFailureRateHigh",
                     "LeasqNoWorker"}  # fmt: skip
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations", "keep_firing_for"}
        assert isinstance(rule["expr"], str) and rule["expr"].strip(), rule["alert"]
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        assert rule["expr"].count("(") == rule["expr"].count(")"), rule["alert"]


def test_the_no_worker_alert_needs_pending_tasks_and_no_lease_for_5_minutes() -> None:
    rules = {rule["alert"]: rule for rule in load_alerts()["groups"][0]["rules"]}
    expr = rules["LeasqNoWorker"]["expr"]
    assert 'leasq_queue_tasks{state="pending"}' in expr and "> 0" in expr
    assert "unless" in expr and "increase(leasq_leases_granted_total[5m])" in expr


def dashboard_exprs() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def test_the_dashboard_shows_queues_rpcs_and_workers() -> None:
    used = {name for expr in dashboard_exprs() for name in METRIC.findall(expr)}
    assert used >= {"leasq_queue_tasks", "leasq_queue_latency_seconds",
                    "leasq_queue_processed_total", "leasq_queue_failed_total",
                    "leasq_rpc_requests_total", "leasq_rpc_duration_seconds_bucket",
                    "leasq_worker_slots_busy"}  # fmt: skip


@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_every_metric_used_is_exported(source: str) -> None:
    exprs = (dashboard_exprs() if source == "dashboard"
             else [rule["expr"] for rule in load_alerts()["groups"][0]["rules"]])  # fmt: skip
    used = {name for expr in exprs for name in METRIC.findall(expr)}
    assert used and used <= exported_names(), used - exported_names()

"""Channel construction: credentials, metadata and the retry policy of idempotent methods."""

from __future__ import annotations

import json

import grpc

from leasq_sdk.channel import (
    IDEMPOTENT_METHODS,
    ChannelSettings,
    call_metadata,
    channel_options,
    credentials,
    service_config,
)


def test_plaintext_is_the_default_and_tls_is_asked_for() -> None:
    assert credentials(ChannelSettings()) is None
    assert isinstance(credentials(ChannelSettings(tls=True)), grpc.ChannelCredentials)
    with_roots = ChannelSettings(root_certificates=b"-----BEGIN CERTIFICATE-----\n")
    assert isinstance(credentials(with_roots), grpc.ChannelCredentials)


def test_given_channel_credentials_are_used_as_they_are() -> None:
    mine = grpc.ssl_channel_credentials()
    assert credentials(ChannelSettings(tls=mine)) is mine


def test_a_token_travels_as_a_bearer_authorization_header() -> None:
    assert call_metadata("s3cret") == (("authorization", "Bearer s3cret"),)
    assert call_metadata(None) is None


def test_only_the_named_methods_get_the_unavailable_retry_policy() -> None:
    config = json.loads(service_config(IDEMPOTENT_METHODS))
    (method_config,) = config["methodConfig"]
    names = {(n["service"], n["method"]) for n in method_config["name"]}
    assert ("leasq.v1.BrokerService", "Enqueue") in names
    assert ("leasq.v1.InspectService", "GetTask") in names
    assert ("leasq.v1.InspectService", "CancelTask") not in names
    policy = method_config["retryPolicy"]
    assert policy["maxAttempts"] == 5
    assert policy["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert json.loads(service_config(())) == {"methodConfig": []}


def test_keepalive_and_extra_options_become_channel_arguments() -> None:
    settings = ChannelSettings(keepalive_time=15, keepalive_timeout=5, options=[("x.y", 1)])
    options = dict(channel_options(settings, ()))
    assert options["grpc.keepalive_time_ms"] == 15_000
    assert options["grpc.keepalive_timeout_ms"] == 5_000
    assert options["x.y"] == 1
    off = dict(channel_options(ChannelSettings(keepalive_time=None), ()))
    assert "grpc.keepalive_time_ms" not in off

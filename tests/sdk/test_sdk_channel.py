"""Channel construction: credentials, metadata, reconnect backoff and the retry backoff."""

from __future__ import annotations

import grpc

from leasq_sdk.channel import (
    ChannelSettings,
    call_metadata,
    channel_options,
    credentials,
)
from leasq_sdk.retry import compute_backoff


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


def test_retry_backoff_doubles_from_50_ms_up_to_a_1_s_cap_with_jitter_below_each_ceiling() -> None:
    lowest = [compute_backoff(n, rng=min) for n in range(8)]
    highest = [compute_backoff(n, rng=max) for n in range(8)]
    assert highest == [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]
    assert lowest == [h / 2 for h in highest]
    assert all(0.5 <= compute_backoff(1000) <= 1.0 for _ in range(100))


def test_channels_reconnect_within_a_second_and_carry_no_attempt_capped_retry_policy() -> None:
    options = dict(channel_options(ChannelSettings()))
    assert options["grpc.initial_reconnect_backoff_ms"] == 100
    # gRPC adds up to 20% jitter: at most 0.96 s between attempts once the broker is back.
    assert options["grpc.max_reconnect_backoff_ms"] * 1.2 < 1000
    assert "grpc.service_config" not in options


def test_keepalive_and_extra_options_become_channel_arguments() -> None:
    settings = ChannelSettings(keepalive_time=15, keepalive_timeout=5, options=[("x.y", 1)])
    options = dict(channel_options(settings))
    assert options["grpc.keepalive_time_ms"] == 15_000
    assert options["grpc.keepalive_timeout_ms"] == 5_000
    assert options["x.y"] == 1
    off = dict(channel_options(ChannelSettings(keepalive_time=None)))
    assert "grpc.keepalive_time_ms" not in off

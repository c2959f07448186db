"""Metrics and tracing of the broker: the HTTP port's /metrics and W3C trace context."""

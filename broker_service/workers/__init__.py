"""The live-worker registry: what workers told the broker, what they hold, operators'
commands."""

"""Operator use cases over many tasks or whole queues: history, bulk moves, search, queue
deletion, memory and server info."""

"""A small blog that notifies subscribers by email and counts reads, with Leasq doing the work.

Modules: ``settings`` (configuration from the environment), ``db`` (SQLite schema and queries),
``tasks`` (the task types, shared by the app and the workers), ``links`` (signed, UTM-tagged
links), ``app`` (the HTTP service), ``email_worker`` and ``analytic_worker`` (the handlers),
``smtp_sink`` (a local SMTP server that keeps what it receives), ``demo`` (``make demo``).
"""

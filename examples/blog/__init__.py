"""A small blog that notifies subscribers by email and counts reads, with Leasq doing the work.

Modules: ``settings`` (configuration from the environment), ``db`` and ``stats_db`` (SQLite
schema, queries and counters), ``tasks`` (the task types, shared by the app and the workers),
``links`` (signed, UTM-tagged links), ``mailer`` (the email), ``app`` (the HTTP service),
``email_worker`` and ``analytic_worker`` (the handlers, sharing ``context``), ``smtp_sink`` (a
local SMTP server that keeps what it receives), ``demo`` (``make demo``). See README.md.
"""

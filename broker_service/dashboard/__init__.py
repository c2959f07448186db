"""The web dashboard: server-rendered pages on the broker's HTTP port.

It reads and acts only through the broker's domain services (the same ones the admin RPCs use,
see :class:`~leasq_broker.dashboard.services.DashboardServices`): no template or script talks to
Redis. Access uses the broker's own bearer tokens and roles (:mod:`.access`).
"""

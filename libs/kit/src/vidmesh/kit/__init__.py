"""vidmesh.kit: what every vidmesh service needs, in one module per concept.

``settings`` (the base Settings), ``db`` (engine, sessions, one transaction per unit of work),
``models`` (the constraint naming convention), ``migrations`` (run a service's Alembic scripts),
``outbox`` and ``inbox`` (events out and in, exactly once in effect), ``logging`` (structlog),
``health`` (the health pattern) and ``cli`` (the ``serve``/``migrate`` commands).
"""

"""vidmesh.devstack: what tests, benchmarks and ``vidmesh up`` run beside vidmesh.

- ``nest``: real NestJS peers (Node.js);
- ``postgres``: a real PostgreSQL 18 (``EmbeddedPostgres``), per-service roles and databases;
- ``broker``: a Kafka-protocol broker (``TansuBroker``, in memory), topics, fast group joins;
- ``objectstore``: an S3 store (``SeaweedStore``, SeaweedFS); ``buckets``: names, deletion;
- ``pytest_plugin``: the ``postgres_url``, ``kafka_bootstrap``, ``fresh_database``,
  ``unique_topic`` and ``unique_group`` fixtures.

See ``docs/devstack.md``.
"""

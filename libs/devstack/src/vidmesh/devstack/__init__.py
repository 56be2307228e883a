"""vidmesh.devstack: what tests, benchmarks and ``vidmesh up`` run beside vidmesh.

- ``nest``: real NestJS peers (Node.js);
- ``postgres``: a real PostgreSQL 18 (``EmbeddedPostgres``), per-service roles and databases;
- ``broker``: a Kafka-protocol broker (``TansuBroker``, in memory), topics, fast group joins;
- ``objectstore``: an S3 store (``SeaweedStore``, SeaweedFS); ``s3``: reaching one (the
  ``VIDMESH_S3_*`` variables), bucket names, a client, deleting a bucket;
- ``pytest_plugin``: the ``postgres_url``, ``kafka_bootstrap``, ``object_store``,
  ``fresh_database``, ``unique_topic``, ``unique_group`` and ``unique_bucket`` fixtures.

See ``docs/devstack.md``.
"""

"""Repository-wide pytest setup."""

# PostgreSQL and Kafka fixtures (postgres_url, kafka_bootstrap, fresh_database, unique_topic,
# unique_group). Lazy: nothing starts unless a test asks for one of them.
pytest_plugins = ["vidmesh.devstack.pytest_plugin", "tests.system_fixtures"]
# tests.system_fixtures: the whole running platform (``system``, ``gateway``) for tests/e2e and
# tests/security, started once per session when a test first asks for it.

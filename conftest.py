"""Repository-wide pytest setup."""

# PostgreSQL and Kafka fixtures (postgres_url, kafka_bootstrap, fresh_database, unique_topic,
# unique_group). Lazy: nothing starts unless a test asks for one of them.
pytest_plugins = ["vidmesh.devstack.pytest_plugin"]

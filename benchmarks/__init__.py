"""vidmesh's benchmarks: ``uv run python -m benchmarks <name> [options]``."""

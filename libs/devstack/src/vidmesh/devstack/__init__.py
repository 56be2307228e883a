"""vidmesh.devstack: what tests and benchmarks run beside vidmesh (real NestJS peers)."""

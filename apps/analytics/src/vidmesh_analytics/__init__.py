"""vidmesh analytics service."""

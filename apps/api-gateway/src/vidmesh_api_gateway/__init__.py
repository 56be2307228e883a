"""vidmesh api-gateway service."""

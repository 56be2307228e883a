"""vidmesh user service."""

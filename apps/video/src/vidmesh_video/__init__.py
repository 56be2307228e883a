"""vidmesh video service."""

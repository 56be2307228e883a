"""vidmesh.contracts: what the services say to each other, the one thing they all import.

Patterns and topics are constants here and nowhere else. ``user``, ``video`` and ``analytics``
hold the patterns each service answers with their request and answer models; ``events`` holds
the Kafka topics and event models; ``health`` the pattern every service answers.
"""

from vidmesh.contracts.health import HEALTH, Health
from vidmesh.contracts.wire import WireModel

__all__ = ["HEALTH", "Health", "WireModel"]

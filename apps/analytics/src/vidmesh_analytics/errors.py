"""The analytics service's domain errors; the caller receives Nest's
``{statusCode, message, error}``.

Its queries have no failure of their own yet (an unknown video has 0 downloads, a bad limit is
refused by the contract's validation), so only the root is here, for the next one to subclass.
"""

from __future__ import annotations

from vidmesh.kit.errors import ServiceError


class AnalyticsError(ServiceError):
    """The root of this service's errors."""

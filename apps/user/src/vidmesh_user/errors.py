"""The user service's domain errors; the caller receives Nest's ``{statusCode, message, error}``."""

from __future__ import annotations

from vidmesh.kit.errors import ServiceError


class UserError(ServiceError):
    """The root of this service's errors."""


class InvalidEmail(UserError):
    status_code = 400
    default_message = "Invalid email address"


class InvalidCredentials(UserError):
    """The one answer for an unknown email and for a wrong password, so neither is revealed."""

    status_code = 401
    default_message = "Invalid email or password"


class UserNotFound(UserError):
    status_code = 404
    default_message = "User not found"


class EmailTaken(UserError):
    status_code = 409
    default_message = "Email already registered"

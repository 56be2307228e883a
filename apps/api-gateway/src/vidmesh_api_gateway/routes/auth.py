"""``/api/auth``: sign up, sign in, refresh (rotation with reuse detection), sign out."""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from vidmesh.contracts.user import Credentials

from vidmesh_api_gateway.dependencies import RefreshTokenDep, SessionsDep, UserClientDep
from vidmesh_api_gateway.errors import BadGateway
from vidmesh_api_gateway.schemas import (
    SigninRequest,
    SignupRequest,
    SignupResponse,
    TokenPairResponse,
    error_responses,
)

router = APIRouter(prefix="/api/auth", tags=["Auth"])


@router.post(
    "/signup",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 409),
)
async def signup(
    body: SignupRequest, users: UserClientDep, sessions: SessionsDep
) -> SignupResponse:
    """Create an account and sign it in. Duplicate email: 409."""
    created = await users.create(Credentials(email=body.email, password=body.password))
    if created.id is None:
        raise BadGateway("The user service created no user")
    pair = await sessions.start(created.id)
    return SignupResponse(
        id=created.id, access_token=pair.access_token, refresh_token=pair.refresh_token
    )


@router.post(
    "/signin",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 401),
)
async def signin(
    body: SigninRequest, users: UserClientDep, sessions: SessionsDep
) -> TokenPairResponse:
    """A new session (token family) for valid credentials; else 401."""
    user = await users.validate(Credentials(email=body.email, password=body.password))
    if user.id is None:
        raise BadGateway("The user service validated no user")
    pair = await sessions.start(user.id)
    return TokenPairResponse(access_token=pair.access_token, refresh_token=pair.refresh_token)


@router.post(
    "/refresh",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401),
)
async def refresh(token: RefreshTokenDep, sessions: SessionsDep) -> TokenPairResponse:
    """Exchange a refresh token for a new pair; the old one is spent. Presenting a spent
    token again revokes its whole session (401)."""
    pair = await sessions.rotate(token)
    return TokenPairResponse(access_token=pair.access_token, refresh_token=pair.refresh_token)


@router.post(
    "/signout",
    status_code=status.HTTP_204_NO_CONTENT,
    response_class=Response,
    responses=error_responses(401),
)
async def signout(token: RefreshTokenDep, sessions: SessionsDep) -> None:
    """End the session of a refresh token: none of its tokens refreshes any more."""
    await sessions.revoke(token)

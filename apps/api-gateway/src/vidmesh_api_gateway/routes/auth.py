"""``/api/auth``: sign up, sign in, refresh (rotation with reuse detection), sign out.

Sign-up and sign-in are limited per client address and per account, refresh per token family
(ratelimits.py): 429 with ``Retry-After``. Failed sign-ins and refresh-token reuse are audited.
"""

from __future__ import annotations

from fastapi import APIRouter, Response, status
from vidmesh.contracts.user import Credentials
from vidmesh.transport import RemoteError

from vidmesh_api_gateway import audit
from vidmesh_api_gateway.dependencies import (
    ClientAddressDep,
    LimitsDep,
    RefreshTokenDep,
    SessionsDep,
    UserClientDep,
)
from vidmesh_api_gateway.errors import BadGateway
from vidmesh_api_gateway.schemas import (
    SigninRequest,
    SignupRequest,
    SignupResponse,
    TokenPairResponse,
    error_responses,
)
from vidmesh_api_gateway.security import RefreshTokenReused, TokenType

router = APIRouter(prefix="/api/auth", tags=["Auth"])


@router.post(
    "/signup",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 409, 429),
)
async def signup(
    body: SignupRequest,
    users: UserClientDep,
    sessions: SessionsDep,
    limits: LimitsDep,
    client: ClientAddressDep,
) -> SignupResponse:
    """Create an account and sign it in. Duplicate email: 409."""
    await limits.signup(client=client, email=body.email)
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
    responses=error_responses(400, 401, 429),
)
async def signin(
    body: SigninRequest,
    users: UserClientDep,
    sessions: SessionsDep,
    limits: LimitsDep,
    client: ClientAddressDep,
) -> TokenPairResponse:
    """A new session (token family) for valid credentials; else 401."""
    await limits.signin(client=client, email=body.email)
    try:
        user = await users.validate(Credentials(email=body.email, password=body.password))
    except RemoteError as error:
        if error.status_code == status.HTTP_401_UNAUTHORIZED:
            audit.signin_failed(email=body.email, client=client)
        raise
    if user.id is None:
        raise BadGateway("The user service validated no user")
    pair = await sessions.start(user.id)
    return TokenPairResponse(access_token=pair.access_token, refresh_token=pair.refresh_token)


@router.post(
    "/refresh",
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(401, 429),
)
async def refresh(
    token: RefreshTokenDep, sessions: SessionsDep, limits: LimitsDep, client: ClientAddressDep
) -> TokenPairResponse:
    """Exchange a refresh token for a new pair; the old one is spent. Presenting a spent
    token again revokes its whole session (401)."""
    claims = sessions.codec.verify(token, TokenType.REFRESH)
    await limits.refresh(client=client, family=str(claims.family), user_id=claims.sub)
    try:
        pair = await sessions.rotate(token)
    except RefreshTokenReused as reused:
        audit.refresh_token_reused(user_id=reused.user_id, family=reused.family, client=client)
        raise
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

"""vidmesh.transport: NestJS-compatible microservice transporters for asyncio."""

from vidmesh.transport.app import Microservice, ServiceState, Transport, run_with_uvloop
from vidmesh.transport.context import Context, MessageContext, current_context
from vidmesh.transport.errors import (
    CloseReason,
    ConnectionLost,
    FrameError,
    PayloadValidationError,
    RemoteError,
    RequestTimeout,
    RpcError,
    ServiceUnavailable,
    TransportError,
    status_error,
)
from vidmesh.transport.middleware import (
    CallKind,
    ClientMiddleware,
    Middleware,
    OutgoingCall,
    log_calls,
    log_messages,
)
from vidmesh.transport.options import ClientOptions, ServerOptions
from vidmesh.transport.patterns import Pattern, route_of
from vidmesh.transport.routing import Router, RouteTable
from vidmesh.transport.tcp.client import TcpClient
from vidmesh.transport.tcp.pool import TcpClientPool
from vidmesh.transport.tcp.server import TcpServer

__all__ = [
    "CallKind",
    "ClientMiddleware",
    "ClientOptions",
    "CloseReason",
    "ConnectionLost",
    "Context",
    "FrameError",
    "MessageContext",
    "Microservice",
    "Middleware",
    "OutgoingCall",
    "Pattern",
    "PayloadValidationError",
    "RemoteError",
    "RequestTimeout",
    "RouteTable",
    "Router",
    "RpcError",
    "ServerOptions",
    "ServiceState",
    "ServiceUnavailable",
    "TcpClient",
    "TcpClientPool",
    "TcpServer",
    "Transport",
    "TransportError",
    "current_context",
    "log_calls",
    "log_messages",
    "route_of",
    "run_with_uvloop",
    "status_error",
]

"""Who may call what: bearer-token authentication and default-deny access rules.

Every route states its access in its `opt` (see `public()` and `roles()`); a route that states
nothing is refused to everyone, and `undeclared_routes()` lets a test prove there is none.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from litestar import Litestar, Request
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult

from market.accounts import service as accounts
from market.accounts.model import Principal, Role

ACCESS = "access"
_PUBLIC = "public"


def public() -> dict[str, Any]:
    """Route opt: anyone may call, authenticated or not."""
    return {ACCESS: _PUBLIC}


def roles(*allowed: Role) -> dict[str, Any]:
    """Route opt: only an authenticated caller holding one of these roles may call."""
    if not allowed:
        raise ValueError("a route must allow at least one role; use public() for everyone")
    return {ACCESS: frozenset(allowed)}


AUTHENTICATED = roles(*Role)

# A handler parameter typed `Caller` receives the authenticated Principal (see provide_principal).
Caller = NamedDependency[Principal]


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    """Resolve `Authorization: Bearer <token>` to a Principal; no header means anonymous.

    A header that is present but wrong is refused even on public routes (RFC 6750 §3.1): a caller
    who meant to authenticate should learn that it failed.
    """

    async def authenticate_request(self, connection: ASGIConnection[Any, Any, Any, Any],
                                   ) -> AuthenticationResult:
        header = connection.headers.get("authorization")
        if header is None:
            return AuthenticationResult(user=None, auth=None)
        scheme, _, credentials = header.partition(" ")
        if scheme.lower() != "bearer" or not credentials.strip():
            raise NotAuthorizedException("the Authorization header must be 'Bearer <token>'")
        principal = await accounts.authenticate(credentials.strip())
        return AuthenticationResult(user=principal, auth=principal.token_id)


async def enforce_access(connection: ASGIConnection[Any, Any, Any, Any],
                         handler: BaseRouteHandler) -> None:
    """The app-wide guard: default deny, then the route's own statement of access.

    A coroutine although it awaits nothing: Litestar runs a plain function guard in a worker
    thread, a thread hop on every request for a few dictionary lookups.
    """
    access = handler.opt.get(ACCESS)
    if access == _PUBLIC:
        return
    if not isinstance(access, frozenset):
        raise PermissionDeniedException("this route has no access rule and is closed")
    principal = connection.scope.get("user")
    if not isinstance(principal, Principal):
        raise NotAuthorizedException("this route needs a bearer token")
    if principal.role not in access:
        allowed = ", ".join(sorted(role.value for role in access))
        raise PermissionDeniedException(f"this route is for: {allowed}")


def provide_principal(request: Request[Any, Any, Any]) -> Principal:
    principal = request.scope.get("user")
    if not isinstance(principal, Principal):
        raise NotAuthorizedException("this route needs a bearer token")
    return principal


def undeclared_routes(app: Litestar) -> list[str]:
    """Routes (method and path) that state no access rule, so are closed to everyone."""
    missing: list[str] = []
    for route in app.routes:
        handlers: Iterable[Any] = getattr(route, "route_handlers", ())
        for handler in handlers:
            if ACCESS not in handler.opt:
                methods = ",".join(sorted(getattr(handler, "http_methods", ()) or ["WS"]))
                missing.append(f"{methods} {route.path}")
    return missing

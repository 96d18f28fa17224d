"""The HTTP layer: a Quart (quart-trio) app served by hypercorn as the ``/app/http`` actor.

Every route is declared once, by a module (:class:`~triotok.modules.Module`)
with the permission it needs and its msgspec models; the app, the URL map and
``/openapi.json`` come from the modules' routes (this layer's own are the
:data:`SYSTEM` module). Errors are ``application/problem+json`` with a
stable ``code``.

::

    services = Services(HttpOptions(port=0), context, modules=(SYSTEM, TENANTS, ACCESS, AUDIT))
    server = await system.spawn(HttpServer, services, name="http")
"""

from .._util import fixup_module_metadata
from ._app import create_app as create_app
from ._conditional import UUID_PATH_SCHEMA as UUID_PATH_SCHEMA
from ._conditional import decode_cursor as decode_cursor
from ._conditional import encode_cursor as encode_cursor
from ._conditional import expected_version as expected_version
from ._conditional import if_match as if_match
from ._conditional import not_modified as not_modified
from ._idempotency import IDEMPOTENCY as IDEMPOTENCY
from ._idempotency import IdempotencyKeys as IdempotencyKeys
from ._metrics import MetricsServer as MetricsServer
from ._middleware import SECURITY_HEADERS as SECURITY_HEADERS
from ._openapi import openapi_document as openapi_document
from ._plugin_routes import plugin_routes as plugin_routes
from ._problems import PROBLEM_JSON as PROBLEM_JSON
from ._routes import Call as Call
from ._routes import Reply as Reply
from ._routes import Route as Route
from ._routes import json_bytes as json_bytes
from ._server import GetPort as GetPort
from ._server import HttpServer as HttpServer
from ._server import bind_socket as bind_socket
from ._server import hypercorn_config as hypercorn_config
from ._services import HttpOptions as HttpOptions
from ._services import Services as Services
from ._stale import StaleResponses as StaleResponses
from ._stale import StaleStatistics as StaleStatistics
from ._table import SYSTEM as SYSTEM
from ._table import all_routes as all_routes

__all__ = (
    "IDEMPOTENCY",
    "PROBLEM_JSON",
    "SECURITY_HEADERS",
    "SYSTEM",
    "UUID_PATH_SCHEMA",
    "Call",
    "GetPort",
    "HttpOptions",
    "HttpServer",
    "IdempotencyKeys",
    "MetricsServer",
    "Reply",
    "Route",
    "Services",
    "StaleResponses",
    "StaleStatistics",
    "all_routes",
    "bind_socket",
    "create_app",
    "decode_cursor",
    "encode_cursor",
    "expected_version",
    "hypercorn_config",
    "if_match",
    "json_bytes",
    "not_modified",
    "openapi_document",
    "plugin_routes",
)

fixup_module_metadata(__name__, globals())

"""The ``webhooks`` plugin: a tenant's events POSTed, signed, to the URLs it configures.

A tenant registers endpoints (``POST /api/plugins/webhooks/endpoints`` with a
URL and event patterns; the answer shows the endpoint's signing secret once).
Every event of that tenant that matches an endpoint's patterns is delivered
to it as JSON::

    {"id": "<event id>", "type": "content.node.published", "version": 1,
     "tenant": "acme", "occurred_at": "2025-01-01T12:00:00+00:00", "data": {...}}

signed with ``X-Triotok-Signature`` (:mod:`~triotok.plugins.webhooks._signing`),
retried with backoff behind a circuit breaker per endpoint, and kept as a
dead letter (``GET /api/plugins/webhooks/dead-letters``, replay with
``POST .../dead-letters/<id>/replay``) when every attempt failed.

It asks for every event (``subscribe=("*",)``) and any host (``hosts=("*",)``):
operators narrow both when they enable it (a webhook plugin allowed to call
any host can reach internal addresses). First-party: ``isolation = "inline"``.

Settings (``PluginOptions.settings["webhooks"]``): ``attempts`` (5),
``backoff_min`` (1 s), ``backoff_max`` (60 s), ``timeout`` (10 s),
``concurrency`` (8), ``breaker_open`` (30 s).
"""

from __future__ import annotations

import json
import secrets
import uuid
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

import trio

from ..._exceptions import Conflict
from ..._util import fixup_module_metadata
from ...actors import ActorRef
from ...modules import Module, Subscription
from ...store import NotFound
from ...supervision import ChildSpec
from ...transport import Envelope
from .. import (
    Capabilities,
    Endpoint,
    Metadata,
    Plugin,
    PluginContext,
    PluginRequest,
    PluginResponse,
)
from . import _models as models
from ._deliverer import Deliverer, Delivery
from ._signing import SIGNATURE_HEADER as SIGNATURE_HEADER
from ._signing import sign as sign
from ._signing import verify as verify

__all__ = ("SIGNATURE_HEADER", "WEBHOOKS", "Webhooks", "sign", "verify")

#: Endpoints a tenant may register.
MAX_ENDPOINTS = 20


def _matches(patterns: list[str], event_type: str) -> bool:
    return any(p == "*" or fnmatchcase(event_type, p) for p in patterns)


class Webhooks(Plugin):
    """See the module docstring."""

    metadata = Metadata(
        "webhooks",
        "1.0.0",
        api="^1.0",
        description="signed HTTP deliveries of a tenant's events, with retries and dead letters",
    )
    capabilities = Capabilities(subscribe=("*",), routes=True, hosts=("*",), storage="webhooks")
    isolation = "inline"

    def __init__(self) -> None:
        self.deliverer: ActorRef | None = None
        #: Deliveries finished (delivered or dead-lettered) by this run.
        self.outcomes = 0
        self._outcome = trio.Event()

    def finished(self) -> None:
        """A delivery ended (the deliverer calls it): wake :meth:`wait_outcomes`."""
        self.outcomes += 1
        self._outcome.set()
        self._outcome = trio.Event()

    async def wait_outcomes(self, count: int) -> None:
        """Until ``count`` deliveries ended in this run (for tests; bound it with a timeout)."""
        while self.outcomes < count:
            await self._outcome.wait()

    def module(self) -> Module:
        return Module(
            name="webhooks",
            routes=self._endpoints,
            actors=lambda _: [ChildSpec("deliverer", Deliverer, (self,))],
            subscriptions=(Subscription("*", lambda _: self.on_event),),
            description=self.metadata.description,
        )

    def _endpoints(self) -> tuple[Endpoint, ...]:
        return (
            Endpoint(
                "POST",
                "/endpoints",
                self.create_endpoint,
                "Register a URL for the tenant's events (the answer shows its secret once)",
                action="create",
                status=201,
                body=models.EndpointCreate,
                response=models.EndpointView,
                errors=(400,),
                operation_id="createEndpoint",
            ),
            Endpoint(
                "GET",
                "/endpoints",
                self.list_endpoints,
                "The tenant's webhook endpoints",
                response=models.EndpointList,
                operation_id="listEndpoints",
            ),
            Endpoint(
                "DELETE",
                "/endpoints/<endpoint_id>",
                self.delete_endpoint,
                "Remove a webhook endpoint",
                action="delete",
                status=204,
                errors=(404,),
                operation_id="deleteEndpoint",
            ),
            Endpoint(
                "GET",
                "/dead-letters",
                self.list_dead_letters,
                "Deliveries that failed every attempt",
                response=models.DeadLetterList,
                operation_id="listDeadLetters",
            ),
            Endpoint(
                "POST",
                "/dead-letters/<letter_id>/replay",
                self.replay,
                "Deliver a dead letter again (it is removed once delivered)",
                action="update",
                response=models.Replay,
                errors=(404,),
                operation_id="replayDeadLetter",
            ),
        )

    async def initialize(self, ctx: PluginContext) -> None:
        self.ctx = ctx

    # ---------------------------------------------------------------- events

    async def on_event(self, envelope: Envelope) -> None:
        if envelope.tenant_id is None or envelope.event_type.startswith("plugin."):
            return
        endpoints = [v for _, v in await self.ctx.storage.list("endpoint/", limit=MAX_ENDPOINTS)]
        targets = [e for e in endpoints if _matches(e["events"], envelope.event_type)]
        if not targets:
            return
        body = json.dumps(
            {
                "id": str(envelope.id),
                "type": envelope.event_type,
                "version": envelope.schema_version,
                "tenant": envelope.tenant_id,
                "occurred_at": envelope.timestamp.isoformat(),
                "data": self.ctx.event_data(envelope),
            },
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        deliverer = self._deliverer()
        for endpoint in targets:
            await deliverer.send(
                Delivery(
                    id=uuid.uuid4().hex[:16],
                    tenant=envelope.tenant_id,
                    endpoint_id=endpoint["id"],
                    url=endpoint["url"],
                    secret=endpoint["secret"],
                    event_id=str(envelope.id),
                    event_type=envelope.event_type,
                    body=body,
                )
            )

    def _deliverer(self) -> ActorRef:
        if self.deliverer is None:
            raise RuntimeError("the deliverer is not running")
        return self.deliverer

    # ---------------------------------------------------------------- routes

    async def create_endpoint(self, request: PluginRequest) -> Any:
        body: models.EndpointCreate = request.body
        existing = await self.ctx.storage.list("endpoint/", limit=MAX_ENDPOINTS)
        if len(existing) >= MAX_ENDPOINTS:
            raise Conflict(f"a tenant has at most {MAX_ENDPOINTS} webhook endpoints")
        endpoint = {
            "id": uuid.uuid4().hex[:16],
            "url": body.url,
            "events": list(body.events),
            "secret": f"whsec_{secrets.token_hex(24)}",
            "created_at": datetime.now(UTC).isoformat(),
        }
        await self.ctx.storage.put(f"endpoint/{endpoint['id']}", endpoint)
        return PluginResponse(endpoint, 201, {"Location": f"endpoints/{endpoint['id']}"})

    async def list_endpoints(self, request: PluginRequest) -> Any:
        items = await self.ctx.storage.list("endpoint/", limit=MAX_ENDPOINTS)
        return {"items": [{**v, "secret": None} for _, v in items]}

    async def delete_endpoint(self, request: PluginRequest) -> Any:
        key = f"endpoint/{request.params['endpoint_id']}"
        if not await self.ctx.storage.delete(key):
            raise NotFound("no such webhook endpoint")
        return PluginResponse(None, 204)

    async def list_dead_letters(self, request: PluginRequest) -> Any:
        items = await self.ctx.storage.list("dead/", limit=1000)
        return {"items": [{k: v for k, v in entry.items() if k != "body"} for _, entry in items]}

    async def replay(self, request: PluginRequest) -> Any:
        letter_id = request.params["letter_id"]
        entry = await self.ctx.storage.get(f"dead/{letter_id}")
        if entry is None:
            raise NotFound("no such dead letter")
        endpoint = await self.ctx.storage.get(f"endpoint/{entry['endpoint_id']}")
        if endpoint is None:
            raise NotFound("its endpoint was removed")
        await self._deliverer().send(
            Delivery(
                id=uuid.uuid4().hex[:16],
                tenant=request.tenant,
                endpoint_id=endpoint["id"],
                url=endpoint["url"],
                secret=endpoint["secret"],
                event_id=entry["event_id"],
                event_type=entry["event_type"],
                body=entry["body"].encode(),
                dead_letter=letter_id,
            )
        )
        return {"id": letter_id, "queued": True}


#: The plugin class, as ``triotok.app.PLUGINS`` lists it.
WEBHOOKS = Webhooks

fixup_module_metadata(__name__, globals())

"""The content module's routes: ``/api/content/nodes``.

Every command goes to the node's entity (``/app/modules/content/nodes``), so
commands to one node are serialised by its mailbox; ``GET`` by id answers
from the entity's state (the write side); the list (``GET
/api/content/nodes``) is the search module's, served from its read model.
Responses carry the node's version as a strong ``ETag``; a restricted reader
(the ``storefront`` role) sees published nodes only (others are 404 and never
listed). ``PATCH`` and ``DELETE`` need it back (``If-Match`` or ``version``
in the body: 428 without, 412 when it is stale); ``GET`` honours
``If-None-Match`` (304). The only file of the module that imports
``triotok.http``.
"""

from __future__ import annotations

import uuid
from typing import Any

from msgspec import UNSET

from ..._exceptions import InvalidInput, NotFound
from ...http import (
    UUID_PATH_SCHEMA,
    Call,
    Reply,
    Route,
    expected_version,
    if_match,
    not_modified,
)
from .._permissions import Permission
from . import _models as models
from ._entity import CreateNode, GetNode, TransitionNode, UpdateNode, Who
from ._lifecycle import Command, Status
from ._model import ContentNode, Translation, check_kind, check_locale, check_tag, parse_node_id
from ._service import ContentService

__all__ = ("ROUTES",)

# ---------------------------------------------------------------- input


def _translations(raw: dict[str, models.ContentTranslation]) -> tuple[Translation, ...]:
    if not raw:
        raise InvalidInput("a node needs at least one translation", field="translations")
    return tuple(
        Translation(
            locale=check_locale(locale, f"translations.{locale}"),
            title=text.title,
            slug=text.slug,
            excerpt=text.excerpt,
            body=text.body,
            body_format=text.body_format,
        )
        for locale, text in sorted(raw.items())
    )


def _tags(raw: list[str]) -> tuple[str, ...]:
    return tuple(sorted({check_tag(t) for t in raw}))


def _parent(raw: str | None, node_id: str | None = None) -> str | None:
    if raw is None:
        return None
    parent = parse_node_id(raw)
    if parent == node_id:
        raise InvalidInput("a node cannot be its own parent", field="parent_id")
    return parent


def _who(call: Call) -> Who:
    return Who(call.principal, call.traceparent)


def _service(call: Call) -> ContentService:
    return call.services.context.get(ContentService)


def _tenant(call: Call) -> str:
    assert call.tenant is not None  # resolved by the pipeline for tenant routes
    return call.tenant.id


def _reply(node: ContentNode, status: int = 200, **headers: str) -> Reply:
    return Reply(node.as_dict(), status, {"ETag": node.etag, **headers})


# ---------------------------------------------------------------- handlers


async def create_node(call: Call) -> Reply:
    body: models.ContentNodeCreate = call.body
    node_id = str(uuid.uuid4())
    command = CreateNode(
        kind=check_kind(body.kind),
        translations=_translations(body.translations),
        who=_who(call),
        parent_id=_parent(body.parent_id),
        position=body.position,
        tags=_tags(body.tags),
    )
    node = await _service(call).ask(_tenant(call), node_id, command)
    assert node is not None
    return _reply(node, 201, Location=f"/api/content/nodes/{node.id}")


async def get_node(call: Call) -> Reply:
    node_id = parse_node_id(call.params["node_id"])
    node = await _service(call).ask(_tenant(call), node_id, GetNode())
    assert node is not None
    if call.restricted and node.status is not Status.PUBLISHED:
        raise NotFound(f"no content node {node_id}")
    if (unchanged := not_modified(call, node.etag)) is not None:
        return unchanged
    return _reply(node)


async def update_node(call: Call) -> Reply:
    body: models.ContentNodeUpdate = call.body
    node_id = parse_node_id(call.params["node_id"])
    expected = expected_version(call, None if body.version is UNSET else body.version)
    changes: dict[str, Any] = {}
    if body.kind is not UNSET:
        changes["kind"] = check_kind(body.kind)
    if body.translations is not UNSET:
        changes["translations"] = _translations(body.translations)
    if body.parent_id is not UNSET:
        changes["parent_id"] = _parent(body.parent_id, node_id)
    if body.position is not UNSET:
        changes["position"] = body.position
    if body.tags is not UNSET:
        changes["tags"] = _tags(body.tags)
    command = UpdateNode(changes, _who(call), expected)
    node = await _service(call).ask(_tenant(call), node_id, command)
    assert node is not None
    return _reply(node)


async def delete_node(call: Call) -> Reply:
    node_id = parse_node_id(call.params["node_id"])
    expected = expected_version(call, None)
    command = TransitionNode(Command.DELETE, _who(call), expected)
    await _service(call).ask(_tenant(call), node_id, command)
    return Reply(b"", 204, content_type="application/json")


def _transition(command: Command) -> Any:
    async def handler(call: Call) -> Reply:
        node_id = parse_node_id(call.params["node_id"])
        expected = if_match(call)
        node = await _service(call).ask(
            _tenant(call), node_id, TransitionNode(command, _who(call), expected)
        )
        assert node is not None
        return _reply(node)

    handler.__name__ = f"{command.value}_node"
    return handler


# ---------------------------------------------------------------- the table


def _p(action: str) -> Permission:
    return Permission("content", action)


_NODE_PATH = "/api/content/nodes/<node_id>"
_NODE_ID = {"node_id": UUID_PATH_SCHEMA}
_ERRORS = (404, 409, 412)

ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/api/content/nodes",
        create_node,
        "Create a content node (a draft)",
        "content",
        _p("create"),
        operation_id="createContentNode",
        status=201,
        body=models.ContentNodeCreate,
        response=models.ContentNode,
        errors=(409,),
    ),
    Route(
        "GET",
        _NODE_PATH,
        get_node,
        "Read a content node (ETag; If-None-Match answers 304)",
        "content",
        _p("read"),
        operation_id="getContentNode",
        path_schemas=_NODE_ID,
        response=models.ContentNode,
        errors=(404,),
        criticality="critical",
        serve_stale=True,
    ),
    Route(
        "PATCH",
        _NODE_PATH,
        update_node,
        "Change a node's content (If-Match or version required)",
        "content",
        _p("update"),
        operation_id="updateContentNode",
        path_schemas=_NODE_ID,
        body=models.ContentNodeUpdate,
        response=models.ContentNode,
        errors=(*_ERRORS, 428),
    ),
    Route(
        "DELETE",
        _NODE_PATH,
        delete_node,
        "Delete a draft or archived node (If-Match required)",
        "content",
        _p("delete"),
        operation_id="deleteContentNode",
        path_schemas=_NODE_ID,
        status=204,
        errors=(*_ERRORS, 428),
    ),
    *(
        Route(
            "POST",
            f"{_NODE_PATH}/{command.value}",
            _transition(command),
            summary,
            "content",
            # What changes the live site (publish, unpublish, archive) is content:admin.
            _p("update" if command is Command.RESTORE else "admin"),
            operation_id=f"{command.value}ContentNode",
            path_schemas=_NODE_ID,
            response=models.ContentNode,
            errors=_ERRORS,
        )
        for command, summary in (
            (Command.PUBLISH, "Publish a draft"),
            (Command.UNPUBLISH, "Take a published node back to draft"),
            (Command.ARCHIVE, "Archive a published node"),
            (Command.RESTORE, "Restore an archived node as a draft"),
        )
    ),
)

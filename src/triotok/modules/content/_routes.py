"""The content module's routes: ``/api/content/nodes``.

Every command goes to the node's entity (``/app/modules/content/nodes``), so
commands to one node are serialised by its mailbox; ``GET`` by id answers
from the entity's state (the write side), lists read the store with a
constant number of queries. Responses carry the node's version as a strong
``ETag``; ``PATCH`` and ``DELETE`` need it back (``If-Match`` or ``version``
in the body: 428 without, 412 when it is stale); ``GET`` honours
``If-None-Match`` (304). The only file of the module that imports
``triotok.http``.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from ..._exceptions import InvalidInput
from ...http import Call, Reply, Route, list_of
from .._permissions import Permission
from ._entity import CreateNode, GetNode, TransitionNode, UpdateNode, Who
from ._lifecycle import Command
from ._model import (
    BODY_FORMATS,
    KIND_PATTERN,
    LOCALE_PATTERN,
    SLUG_PATTERN,
    TAG_PATTERN,
    ContentNode,
    Translation,
    check_kind,
    check_locale,
    check_tag,
    parse_node_id,
)
from ._service import ContentService, PreconditionRequired

__all__ = ("ROUTES",)

_TRANSLATION: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "minLength": 1, "maxLength": 300},
        "slug": {"type": "string", "pattern": f"^{SLUG_PATTERN}$", "maxLength": 200},
        "excerpt": {"type": "string", "maxLength": 2000},
        "body": {"type": "string", "maxLength": 500_000},
        "body_format": {"type": "string", "enum": list(BODY_FORMATS)},
    },
    "required": ["title", "slug"],
    "additionalProperties": False,
}
_TRANSLATIONS: dict[str, Any] = {
    "type": "object",
    "minProperties": 1,
    "maxProperties": 50,
    "propertyNames": {"pattern": f"^{LOCALE_PATTERN}$"},
    "additionalProperties": _TRANSLATION,
}
_TAGS: dict[str, Any] = {
    "type": "array",
    "items": {"type": "string", "pattern": f"^{TAG_PATTERN}$"},
    "maxItems": 50,
    "uniqueItems": True,
}
_UUID = {"type": "string", "format": "uuid"}
_NULLABLE_UUID = {"type": ["string", "null"], "format": "uuid"}
_POSITION = {"type": ["integer", "null"], "minimum": 0, "maximum": 1_000_000}

NODE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": _UUID,
        "kind": {"type": "string"},
        "status": {"type": "string", "enum": ["draft", "published", "archived"]},
        "translations": {"type": "object", "additionalProperties": _TRANSLATION},
        "parent_id": _NULLABLE_UUID,
        "position": {"type": ["integer", "null"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "published_at": {"type": ["string", "null"], "format": "date-time"},
        "version": {"type": "integer"},
    },
    "required": ["id", "kind", "status", "translations", "tags", "version"],
}
CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "kind": {"type": "string", "pattern": f"^{KIND_PATTERN}$"},
        "translations": _TRANSLATIONS,
        "parent_id": _NULLABLE_UUID,
        "position": _POSITION,
        "tags": _TAGS,
    },
    "required": ["kind", "translations"],
    "additionalProperties": False,
}
UPDATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "kind": {"type": "string", "pattern": f"^{KIND_PATTERN}$"},
        "translations": _TRANSLATIONS,
        "parent_id": _NULLABLE_UUID,
        "position": _POSITION,
        "tags": _TAGS,
        "version": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
    },
    "additionalProperties": False,
}
_LIST_QUERY: dict[str, dict[str, Any]] = {
    "status": {"type": "string", "enum": ["draft", "published", "archived"]},
    "kind": {"type": "string", "pattern": f"^{KIND_PATTERN}$"},
    "locale": {"type": "string", "pattern": f"^{LOCALE_PATTERN}$"},
    "tag": {"type": "string", "pattern": f"^{TAG_PATTERN}$"},
    "limit": {"type": "integer", "minimum": 1, "maximum": 100},
    "cursor": {"type": "string", "maxLength": 100},
}
_PAGE_SCHEMA: dict[str, Any] = {
    **list_of(NODE_SCHEMA),
    "properties": {
        **list_of(NODE_SCHEMA)["properties"],
        "next_cursor": {"type": ["string", "null"]},
    },
}


# ---------------------------------------------------------------- input


def _translations(raw: dict[str, Any]) -> tuple[Translation, ...]:
    if not raw:
        raise InvalidInput("a node needs at least one translation", field="translations")
    return tuple(
        Translation(
            locale=check_locale(locale, f"translations.{locale}"),
            title=text["title"],
            slug=text["slug"],
            excerpt=text.get("excerpt", ""),
            body=text.get("body", ""),
            body_format=text.get("body_format", "markdown"),
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


def _encode_cursor(after: str | None) -> str | None:
    if after is None:
        return None
    return base64.urlsafe_b64encode(after.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        decoded = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        return str(uuid.UUID(decoded))
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidInput("cursor is not one this API handed out", field="cursor") from None


# ---------------------------------------------------------------- handlers


async def create_node(call: Call) -> Reply:
    body = call.body
    node_id = str(uuid.uuid4())
    command = CreateNode(
        kind=check_kind(body["kind"]),
        translations=_translations(body["translations"]),
        who=_who(call),
        parent_id=_parent(body.get("parent_id")),
        position=body.get("position"),
        tags=_tags(body.get("tags", [])),
    )
    node = await _service(call).ask(_tenant(call), node_id, command)
    assert node is not None
    return _reply(node, 201, Location=f"/api/content/nodes/{node.id}")


async def list_nodes(call: Call) -> dict[str, Any]:
    query = call.query
    after = _decode_cursor(query["cursor"]) if "cursor" in query else ""
    page = await _service(call).list(
        _tenant(call),
        status=query.get("status"),
        kind=query.get("kind"),
        locale=query.get("locale"),
        tag=query.get("tag"),
        after=after,
        limit=int(query.get("limit", 50)),
    )
    return {"items": [n.as_dict() for n in page.nodes], "next_cursor": _encode_cursor(page.after)}


async def get_node(call: Call) -> Reply:
    node = await _service(call).ask(_tenant(call), parse_node_id(call.params["node_id"]), GetNode())
    assert node is not None
    if node.etag in _etags(call.headers.get("If-None-Match")):
        return Reply(b"", 304, {"ETag": node.etag})
    return _reply(node)


async def update_node(call: Call) -> Reply:
    body = dict(call.body)
    node_id = parse_node_id(call.params["node_id"])
    expected = _expected_version(call, body.pop("version", None))
    changes: dict[str, Any] = {}
    if "kind" in body:
        changes["kind"] = check_kind(body["kind"])
    if "translations" in body:
        changes["translations"] = _translations(body["translations"])
    if "parent_id" in body:
        changes["parent_id"] = _parent(body["parent_id"], node_id)
    if "position" in body:
        changes["position"] = body["position"]
    if "tags" in body:
        changes["tags"] = _tags(body["tags"])
    command = UpdateNode(changes, _who(call), expected)
    node = await _service(call).ask(_tenant(call), node_id, command)
    assert node is not None
    return _reply(node)


async def delete_node(call: Call) -> Reply:
    node_id = parse_node_id(call.params["node_id"])
    expected = _expected_version(call, None)
    command = TransitionNode(Command.DELETE, _who(call), expected)
    await _service(call).ask(_tenant(call), node_id, command)
    return Reply(b"", 204, content_type="application/json")


def _transition(command: Command) -> Any:
    async def handler(call: Call) -> Reply:
        node_id = parse_node_id(call.params["node_id"])
        expected = _if_match(call.headers.get("If-Match"))
        node = await _service(call).ask(
            _tenant(call), node_id, TransitionNode(command, _who(call), expected)
        )
        assert node is not None
        return _reply(node)

    handler.__name__ = f"{command.value}_node"
    return handler


# ---------------------------------------------------------------- preconditions


def _etags(header: str | None) -> set[str]:
    if header is None:
        return set()
    return {tag.strip().removeprefix("W/") for tag in header.split(",") if tag.strip()}


def _if_match(header: str | None) -> int | None:
    """The version an ``If-Match`` names (``None`` without the header or for ``*``)."""
    if header is None or header.strip() == "*":
        return None
    tags = _etags(header)
    if len(tags) != 1:
        raise InvalidInput('If-Match must name one version, e.g. If-Match: "3"', field="If-Match")
    [tag] = tags
    digits = tag.strip('"')
    if not (tag.startswith('"') and tag.endswith('"') and digits.isascii() and digits.isdigit()):
        raise InvalidInput('If-Match must name one version, e.g. If-Match: "3"', field="If-Match")
    return int(digits)


def _expected_version(call: Call, in_body: int | None) -> int:
    """What ``PATCH``/``DELETE`` compare: ``If-Match`` or ``version``; 428 if neither."""
    from_header = _if_match(call.headers.get("If-Match"))
    if from_header is not None and in_body is not None and from_header != in_body:
        raise InvalidInput("If-Match and version name different versions", field="version")
    expected = from_header if from_header is not None else in_body
    if expected is None:
        raise PreconditionRequired(
            'send the version you read (If-Match: "<version>" or "version" in the body)'
        )
    return expected


# ---------------------------------------------------------------- the table


def _p(action: str) -> Permission:
    return Permission("content", action)


_NODE_PATH = "/api/content/nodes/<node_id>"
_ERRORS = (404, 409, 412)

ROUTES: tuple[Route, ...] = (
    Route(
        "POST",
        "/api/content/nodes",
        create_node,
        "Create a content node (a draft)",
        "content",
        _p("create"),
        status=201,
        body=CREATE_SCHEMA,
        response=NODE_SCHEMA,
        errors=(409,),
    ),
    Route(
        "GET",
        "/api/content/nodes",
        list_nodes,
        "List content nodes (filters; keyset pagination with an opaque cursor)",
        "content",
        _p("read"),
        query=_LIST_QUERY,
        response=_PAGE_SCHEMA,
    ),
    Route(
        "GET",
        _NODE_PATH,
        get_node,
        "Read a content node (ETag; If-None-Match answers 304)",
        "content",
        _p("read"),
        response=NODE_SCHEMA,
        errors=(304, 404),
    ),
    Route(
        "PATCH",
        _NODE_PATH,
        update_node,
        "Change a node's content (If-Match or version required)",
        "content",
        _p("update"),
        body=UPDATE_SCHEMA,
        response=NODE_SCHEMA,
        errors=(*_ERRORS, 428),
    ),
    Route(
        "DELETE",
        _NODE_PATH,
        delete_node,
        "Delete a draft or archived node (If-Match required)",
        "content",
        _p("delete"),
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
            response=NODE_SCHEMA,
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

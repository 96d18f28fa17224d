"""``/openapi.json`` as a client generator reads it, and the models behind it.

* every operation has an ``operationId``: explicit, lower camelCase, unique;
* every body (request, success, problem) is a named component by ``$ref``,
  or a plain type for text;
* every request and response body has an example, and the example is valid:
  against the published schema (a JSON Schema validator) and the route's own
  model (``msgspec.convert``);
* the models validate as the schema subset did: every failing member named,
  and patterns anchored for Python's ``re.search`` too (no trailing newline).
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
import pytest
import trio

from tests.http.conftest import Server
from triotok.app import route_table
from triotok.http import Route, openapi_document
from triotok.http._models import Problem, validation_errors
from triotok.http._routes import OPERATION_ID

ROUTES = route_table()
DOCUMENT = openapi_document(ROUTES, version="test")


def _operations() -> list[tuple[Route, dict[str, Any]]]:
    return [(r, DOCUMENT["paths"][r.openapi_path][r.method.lower()]) for r in ROUTES]


def test_operation_ids_are_explicit_camel_case_and_unique() -> None:
    ids = [op["operationId"] for _, op in _operations()]
    assert len(ids) == len(set(ids))
    for route, op in _operations():
        assert OPERATION_ID.fullmatch(op["operationId"]), route.endpoint
        assert "_" not in op["operationId"]
    assert DOCUMENT["paths"]["/api/tenants/current"]["get"]["operationId"] == "getCurrentTenant"


def test_bodies_are_named_components() -> None:
    schemas = DOCUMENT["components"]["schemas"]
    assert {"Tenant", "TenantCreate", "TenantUpdate", "ApiKey", "AuditEntry", "Problem"} <= set(
        schemas
    )
    for route, op in _operations():
        media = []
        if "requestBody" in op:
            media += op["requestBody"]["content"].items()
        for response in op["responses"].values():
            media += response.get("content", {}).items()
        for content_type, item in media:
            if content_type.endswith("json"):
                ref = item["schema"]["$ref"]
                assert ref.removeprefix("#/components/schemas/") in schemas, route.endpoint
            else:
                assert item["schema"] == {"type": "string"}, route.endpoint
        for status, response in op["responses"].items():
            if int(status) >= 400:
                problem = response["content"]["application/problem+json"]["schema"]
                assert problem == {"$ref": "#/components/schemas/Problem"}


def _examples() -> list[tuple[str, str, dict[str, Any], Any, Any]]:
    """(operation, where, media type object, example, model) of every body."""
    found = []
    for route, op in _operations():
        if "requestBody" in op:
            [(_, media)] = op["requestBody"]["content"].items()
            found.append((route.operation_id, "request", media, media.get("example"), route.body))
        for status, response in op["responses"].items():
            for media in response.get("content", {}).values():
                model = route.response if int(status) < 400 else Problem
                found.append((route.operation_id, status, media, media.get("example"), model))
    return found


def test_every_body_has_an_example_that_fits_its_schema() -> None:
    jsonschema_rs = pytest.importorskip("jsonschema_rs", reason="comes with schemathesis")
    components = {"components": DOCUMENT["components"]}
    checked = 0
    for operation, where, media, example, model in _examples():
        assert example is not None, (operation, where)
        schema = {**media["schema"], **components}
        validator = jsonschema_rs.validator_for(schema)
        errors = [e.message for e in validator.iter_errors(example)]
        assert errors == [], (operation, where, errors)
        msgspec.convert(example, model)  # and the model itself takes it
        checked += 1
    assert checked > len(ROUTES) * 3  # request, success and problems


async def test_the_served_document_is_the_generated_one(server: Server) -> None:
    with trio.fail_after(10):
        served = (await server.client.get("/openapi.json")).json()
    assert served["components"]["schemas"] == DOCUMENT["components"]["schemas"]
    assert served["paths"].keys() == DOCUMENT["paths"].keys()


# ---------------------------------------------------------------- the models' validation


class Sample(msgspec.Struct, forbid_unknown_fields=True):
    id: Annotated[str, msgspec.Meta(pattern="^[a-z]{1,3}$(?!\\n)")]
    n: Annotated[int, msgspec.Meta(ge=1, le=5)] = 1
    tags: Annotated[list[str], msgspec.Meta(max_length=2)] = []
    role: Annotated[str, msgspec.Meta(pattern="^(a|b)$")] = "a"
    opt: str | None = None


@pytest.mark.parametrize(
    ("value", "paths"),
    [
        ({"id": "ab"}, []),
        ({"id": "ab", "n": 3, "tags": ["x"], "role": "a", "opt": None}, []),
        ({}, ["/id"]),
        ({"id": "abcd"}, ["/id"]),
        ({"id": "ab\n"}, ["/id"]),
        ({"id": "a", "n": True}, ["/n"]),
        ({"id": "a", "n": 1.5}, ["/n"]),
        ({"id": "a", "n": 9}, ["/n"]),
        ({"id": "a", "tags": ["x", 1]}, ["/tags/1"]),
        ({"id": "a", "tags": ["x", "y", "z"]}, ["/tags"]),
        ({"id": "a", "role": "c"}, ["/role"]),
        ({"id": "a", "zzz": 1}, ["/zzz"]),
        ({"n": 0, "zzz": 1}, ["/id", "/n", "/zzz"]),
        ([], ["/"]),
        ("x", ["/"]),
    ],
)
def test_validation_errors_name_every_member(value: Any, paths: list[str]) -> None:
    errors = validation_errors(Sample, value)
    assert [e["path"] for e in errors] == paths
    assert all(e["message"] for e in errors)


@pytest.mark.parametrize(
    "body",
    [{"id": "nl\n", "name": "x"}, {"id": "nl", "name": "x\n"}, {"id": "nl", "name": "x\r\n"}],
)
async def test_a_trailing_newline_is_not_a_whole_match(server: Server, body: Any) -> None:
    headers = server.auth(await server.operator())
    with trio.fail_after(10):
        response = await server.client.post("/api/tenants", json=body, headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "validation_failed"

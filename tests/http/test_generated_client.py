"""A client generated from ``/openapi.json`` by openapi-python-client works, with good names.

The generator runs as a subprocess on the document a real server publishes;
the generated package is imported and used (its async API, httpx under trio)
against that server: create a tenant, read it back, and see a refusal as the
``Problem`` model. Its classes and functions are named after the schemas and
the ``operationId``s (``models.Tenant``, ``api.tenants.get_tenant``), not after
paths and status codes (``GetApiTenantsCurrentResponse200``).
"""

from __future__ import annotations

import importlib
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.http.conftest import Server

pytest.importorskip("openapi_python_client", reason="install the 'test' extras")

PACKAGE = "triotok_client"


def _generator() -> list[str]:
    script = Path(sys.executable).with_name("openapi-python-client")
    if script.exists():
        return [str(script)]
    found = shutil.which("openapi-python-client")
    if found is None:
        pytest.skip("the openapi-python-client command is not installed")
    return [found]


def generate(document: dict[str, Any], where: Path) -> None:
    """Run openapi-python-client on ``document``: the package ``triotok_client`` in ``where``."""
    spec = where / "openapi.json"
    spec.write_text(json.dumps(document))
    config = where / "config.json"
    config.write_text(
        json.dumps(
            {
                "project_name_override": "triotok-client",
                "package_name_override": PACKAGE,
                "post_hooks": [],  # no formatter run: the test needs the code, not its style
            }
        )
    )
    result = subprocess.run(
        [
            *_generator(),
            "generate",
            "--path",
            str(spec),
            "--config",
            str(config),
            "--meta",
            "none",
            "--output-path",
            str(where / PACKAGE),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Any warning means a piece of the API could not be generated.
    assert "Warning" not in result.stdout + result.stderr, result.stdout + result.stderr


@pytest.fixture
def client_path(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    yield tmp_path
    sys.path.remove(str(tmp_path))
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
        del sys.modules[name]


@pytest.mark.slow
async def test_a_generated_client_creates_and_reads_a_tenant(
    server: Server, client_path: Path
) -> None:
    with trio.fail_after(60):
        document = (await server.client.get("/openapi.json")).json()
        await trio.to_thread.run_sync(generate, document, client_path)
    client_module = importlib.import_module(PACKAGE)
    models = importlib.import_module(f"{PACKAGE}.models")
    create_tenant = importlib.import_module(f"{PACKAGE}.api.tenants.create_tenant")
    get_tenant = importlib.import_module(f"{PACKAGE}.api.tenants.get_tenant")
    get_current_tenant = importlib.import_module(f"{PACKAGE}.api.tenants.get_current_tenant")

    # Classes named after the component schemas, not after paths and statuses.
    for name in ("Tenant", "TenantCreate", "TenantUpdate", "ApiKey", "AuditEntry", "Problem"):
        assert hasattr(models, name), name
    assert not [name for name in dir(models) if "Response200" in name]

    key = await server.operator()
    client = client_module.AuthenticatedClient(base_url=server.url, token=key)
    with trio.fail_after(30):
        async with client:
            created = await create_tenant.asyncio(
                client=client,
                body=models.TenantCreate(
                    id="genco",
                    name="Generated Co",
                    settings=models.TenantCreateSettings.from_dict({"plan": "pro"}),
                ),
            )
            read = await get_tenant.asyncio("genco", client=client)
            again = await create_tenant.asyncio(
                client=client, body=models.TenantCreate(id="genco", name="Twice")
            )
            mine = await get_current_tenant.asyncio_detailed(client=client)

    assert isinstance(created, models.Tenant), created
    assert (created.id, created.name, created.version) == ("genco", "Generated Co", 1)
    assert created.settings.to_dict() == {"plan": "pro"}
    assert isinstance(read, models.Tenant), read
    assert read.to_dict() == created.to_dict()
    assert read.active is True
    # Refusals come back as the Problem model, with the stable code.
    assert isinstance(again, models.Problem), again
    assert (again.status, again.code) == (409, "conflict")
    assert mine.status_code == 200
    assert isinstance(mine.parsed, models.Tenant)
    assert mine.parsed.id == server.app.settings.operator_tenant

"""schemathesis against a live server: no 5xx, no response that breaks ``/openapi.json``.

Every operation of the published document is fuzzed with an operator admin
key: schema-valid requests (which must also be accepted, unless the answer
is a documented refusal such as 403/404/409/412/428) and schema-violating ones
(which must never cause a 5xx or an undocumented answer). Hypothesis runs
in a worker thread, the server in the test's trio loop.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import trio

from tests.http.conftest import ServerFactory

schemathesis = pytest.importorskip("schemathesis", reason="install the 'test' extras")

POSITIVE_EXAMPLES = 25
NEGATIVE_EXAMPLES = 10
#: Not "ops": schemathesis generates tenant ids and must not deactivate its own tenant.
OPERATOR_TENANT = "schemathesis-operators"

#: What every answer is checked for (schemathesis' own check functions).
RESPONSE_CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/triotok.db"


def fuzz(base_url: str, key: str) -> list[str]:
    """Run schemathesis over every operation; a summary per failing operation and mode."""
    import requests
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis import checks as st_checks

    session = requests.Session()
    session.trust_env = False  # 127.0.0.1 only, whatever proxies the environment names
    from schemathesis.config import SchemathesisConfig

    # Documented refusals of valid data: besides 401/403/404/409, a conditional
    # write without its version (428) or with a stale one (412).
    accepted = ["2xx", "3xx", "401", "403", "404", "409", "412", "428", "429", "5xx"]
    # A search refuses some schema-valid queries with a 400 problem, as documented: its
    # query language (an unclosed quote, exclusions alone), parameters of the other
    # type (kind for products), and cursors it did not hand out. JSON Schema cannot
    # say so; every other check still applies to those answers.
    search = {
        "include-operation-id": "search",
        "checks": {"positive_data_acceptance": {"expected-statuses": [*accepted, "400"]}},
    }
    config = SchemathesisConfig.from_dict(
        {
            "checks": {"positive_data_acceptance": {"expected-statuses": accepted}},
            "operations": [search],
        }
    )
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config, timeout=10)
    headers = {"Authorization": f"Bearer {key}"}
    response_checks = [getattr(st_checks, name) for name in RESPONSE_CHECKS]
    modes = (
        (GenerationMode.POSITIVE, POSITIVE_EXAMPLES, [st_checks.positive_data_acceptance]),
        (GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES, []),
    )
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode, examples, extra_checks in modes:
            strategy = operation.as_strategy(generation_mode=mode)
            if mode is GenerationMode.POSITIVE:
                # U+0000 is refused in every string (PostgreSQL cannot store it), a rule
                # JSON Schema cannot state for the free-form ``settings``: not "valid" data.
                strategy = strategy.filter(lambda case: "\\x00" not in repr(case.body))
                # A generated Idempotency-Key repeats across cases with other bodies: the
                # server then refuses (422 idempotency_key_reused) because of what an
                # earlier case did, as a 409 would. Valid data gets a key of its own.
                strategy = strategy.map(_own_idempotency_key)
            try:
                run_cases(
                    strategy, examples, response_checks + extra_checks, base_url, headers, session
                )
            except Unsatisfiable:
                # Nothing to violate (no parameters, no body): there is no negative case.
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (AssertionError, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} ({mode.value}): {describe(exc)}")
    session.close()
    assert operations >= 20, "the schema lists every route"
    return failures


def _own_idempotency_key(case: Any) -> Any:
    headers = case.headers or {}
    if "Idempotency-Key" in headers:
        headers["Idempotency-Key"] = uuid.uuid4().hex
    return case


def describe(exc: BaseException) -> str:
    """The failure and, for a group (Hypothesis' "flaky"), each failure inside it."""
    lines = [f"{type(exc).__name__}: {exc}"]
    for inner in getattr(exc, "exceptions", ()):
        lines += ["  " + line for line in describe(inner).splitlines()]
    return "\n".join(lines)


def run_cases(
    strategy: Any,
    examples: int,
    checks: list[Any],
    base_url: str,
    headers: dict[str, str],
    session: Any,
) -> None:
    """Send ``examples`` generated cases; raise what the checks find (shrunk by Hypothesis)."""
    from hypothesis import HealthCheck, Phase, given, settings

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def check(case: Any) -> None:
        response = case.call(base_url=base_url, headers=headers, session=session)
        if case.method.upper() == "POST" and case.path == "/system/mode":
            # An operator's service mode would refuse the next operations (503 by
            # design, tests/http/test_modes.py): lift it at once.
            session.delete(f"{base_url}/system/mode", headers=headers, timeout=10)
        case.validate_response(response, checks=checks, headers=headers)

    check()


@pytest.mark.slow
async def test_schemathesis_finds_nothing(make_server: ServerFactory) -> None:
    async with make_server(operator_tenant=OPERATOR_TENANT) as server:
        key = await server.operator()
        with trio.fail_after(120):
            failures = await trio.to_thread.run_sync(fuzz, server.url, key)
    assert failures == [], "\n\n".join(failures)

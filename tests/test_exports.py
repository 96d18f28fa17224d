"""Pin the public contract (docs/explanation/architecture.md): these import paths must not move."""

from __future__ import annotations

import importlib

import pytest

CONTRACT = {
    "triotok": ["open_system", "Actor", "ActorRef", "ActorSystem"],
    "triotok.actors": [
        "Mailbox",
        "Overflow",
        "SingleFlight",
        "LoadingCache",
        "ActorError",
        "MailboxFull",
        "AskTimeout",
        "ActorCrashed",
        "ActorStopped",
        "DeadLetter",
    ],
    "triotok.supervision": [
        "ChildSpec",
        "Strategy",
        "Restart",
        "Backoff",
        "SupervisorSpec",
        "CircuitBreaker",
        "BreakerState",
        "CircuitOpen",
    ],
    "triotok.transport": ["Envelope", "event", "upcaster", "encode", "decode", "SchemaError"],
    "triotok.testing": ["ActorStateMachine", "TestSystem", "open_test_system"],
}


@pytest.mark.parametrize("module", sorted(CONTRACT))
def test_contract_names_are_exported(module: str) -> None:
    mod = importlib.import_module(module)
    missing = [name for name in CONTRACT[module] if not hasattr(mod, name)]
    assert missing == []
    assert set(CONTRACT[module]) <= set(mod.__all__)


@pytest.mark.parametrize("module", sorted(CONTRACT))
def test_all_is_a_sorted_tuple_of_real_names(module: str) -> None:
    mod = importlib.import_module(module)
    assert isinstance(mod.__all__, tuple)
    assert [n for n in mod.__all__ if not hasattr(mod, n)] == []


def test_errors_share_one_root() -> None:
    from triotok import TriotokError, actors, supervision, transport

    for error in (
        actors.ActorError,
        actors.MailboxFull,
        actors.AskTimeout,
        actors.ActorCrashed,
        actors.ActorStopped,
        supervision.CircuitOpen,
        transport.SchemaError,
    ):
        assert issubclass(error, TriotokError)
        assert isinstance(error.code, str)
        assert error.code

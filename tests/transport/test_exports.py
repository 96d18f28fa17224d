"""The public names of triotok.transport (the public contract plus extensions)."""

from __future__ import annotations

import inspect

import triotok.transport

CONTRACT = {"Envelope", "event", "upcaster", "encode", "decode", "SchemaError"}


def test_contract_names_are_exported() -> None:
    assert set(triotok.transport.__all__) >= CONTRACT


def test_all_is_exact() -> None:
    assert isinstance(triotok.transport.__all__, tuple)
    assert sorted(triotok.transport.__all__) == sorted(
        [
            "DEFAULT_MAX_SIZE",
            "WIRE_VERSION",
            "BusActor",
            "BusStatistics",
            "DeadEvent",
            "DeadLetterFilter",
            "DeadLetterLog",
            "DeadLetterQueue",
            "DeadLetterQueueStatistics",
            "DeadLetterStore",
            "Envelope",
            "EventBus",
            "EventSchema",
            "EventSink",
            "InMemoryDeadLetterLog",
            "InMemoryDeadLetterStore",
            "InMemoryTransport",
            "InvalidConfig",
            "PermanentError",
            "RetryPolicy",
            "SchemaError",
            "SchemaRegistry",
            "SubscriptionInfo",
            "TransientError",
            "Transport",
            "TransportStatistics",
            "Upcaster",
            "decode",
            "default_registry",
            "encode",
            "event",
            "is_retryable",
            "open_event_bus",
            "ordering_key",
            "upcaster",
            "validate_traceparent",
        ]
    )
    for name in triotok.transport.__all__:
        assert hasattr(triotok.transport, name), name


def test_schema_error_is_the_one_from_the_tree() -> None:
    from triotok._exceptions import SchemaError, TriotokError

    assert triotok.transport.SchemaError is SchemaError
    assert issubclass(SchemaError, TriotokError)
    assert issubclass(SchemaError, ValueError)


def test_public_names_have_docstrings() -> None:
    for name in triotok.transport.__all__:
        obj = getattr(triotok.transport, name)
        # Type aliases (EventSink, Upcaster) cannot carry a runtime docstring.
        if inspect.isfunction(obj) or inspect.isclass(obj):
            assert obj.__doc__, name

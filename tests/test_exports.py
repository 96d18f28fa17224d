"""Pin the public API: every public package's ``__all__`` exactly, the contract, each name's home.

``PUBLIC`` is the whole public surface, package by package (httpx's
``tests/test_exported_members.py``): adding or removing a name is a
deliberate change to this table. ``CONTRACT`` is the subset
docs/explanation/architecture.md promises never to move.
"""

from __future__ import annotations

import importlib
import inspect
import types

import pytest

from triotok._util import fixup_module_metadata, is_private_module

PUBLIC: dict[str, set[str]] = {
    "triotok": {
        "Actor",
        "ActorRef",
        "ActorSystem",
        "TriotokError",
        "__version__",
        "open_system",
    },
    "triotok.resilience": {
        "Backoff",
        "BackoffState",
        "BreakerPolicy",
        "BreakerState",
        "BreakerStatistics",
        "BreakerTransition",
        "CacheStatistics",
        "CircuitBreaker",
        "CircuitOpen",
        "Criticality",
        "FlightResult",
        "GcraTable",
        "GiveUpReason",
        "LoadingCache",
        "ModeBoard",
        "ModeChange",
        "ModeDecision",
        "ModeOverride",
        "ModePolicy",
        "ModeReason",
        "ModeSignals",
        "ModeStatistics",
        "RateDecision",
        "RateLimit",
        "RateLimited",
        "RateLimiter",
        "RateLimiterStatistics",
        "RetryDecision",
        "RetryPolicy",
        "ServiceMode",
        "SingleFlight",
        "SingleFlightStatistics",
        "admits",
        "backoff_delay",
        "failure_cause",
        "is_retryable",
        "open_loading_cache",
        "open_singleflight",
    },
    "triotok.actors": {
        "Actor",
        "ActorContext",
        "Failure",
        "ActorCrashed",
        "ActorError",
        "ActorNotFound",
        "ActorRef",
        "ActorState",
        "ActorStatistics",
        "ActorStopped",
        "AskTimeout",
        "BATCH",
        "CacheStatistics",
        "DeadLetter",
        "DeadLetterOffice",
        "DeadLetterReason",
        "DeadLetterStatistics",
        "FlightResult",
        "InvalidConfig",
        "LoadingCache",
        "Mailbox",
        "MailboxFull",
        "MessageHook",
        "Overflow",
        "SingleFlight",
        "SingleFlightStatistics",
        "UnknownMessage",
        "open_loading_cache",
        "open_singleflight",
    },
    "triotok.telemetry": {
        "EXPORTERS",
        "LOG_FORMATS",
        "REQUEST_SCOPE",
        "ContextFilter",
        "Telemetry",
        "TelemetryOptions",
        "configure_logging",
        "span",
    },
    "triotok.actors.lowlevel": {
        "ActorCell",
        "AskRequest",
        "ContextCapture",
        "Node",
        "Runtime",
        "TracedActorRef",
        "percentile",
        "track_capture",
    },
    "triotok.supervision": {
        "ActorSystem",
        "entity_name",
        "check_version",
        "PassivationPolicy",
        "EntityPoisoned",
        "EntityConflict",
        "EntitiesStatistics",
        "EntitiesRef",
        "Entities",
        "ConflictError",
        "Backoff",
        "BackoffState",
        "BreakerPolicy",
        "BreakerState",
        "BreakerStatistics",
        "BreakerTransition",
        "ChildInfo",
        "ChildSpec",
        "ChildStartFailed",
        "CircuitBreaker",
        "CircuitOpen",
        "InvalidConfig",
        "RateDecision",
        "RateLimit",
        "RateLimited",
        "RateLimiter",
        "RateLimiterStatistics",
        "Restart",
        "RestartIntensity",
        "Strategy",
        "SupervisorFailed",
        "SupervisorRef",
        "SupervisorSpec",
        "SupervisorStatistics",
        "System",
        "backoff_delay",
        "open_system",
    },
    "triotok.transport": {
        "DeliveryHook",
        "BusActor",
        "BusStatistics",
        "ConsumerGroup",
        "ConsumerState",
        "ConsumerStatistics",
        "DEFAULT_MAX_SIZE",
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
        "GroupSink",
        "GroupTransport",
        "InMemoryDeadLetterLog",
        "InMemoryDeadLetterStore",
        "InMemoryTransport",
        "InvalidConfig",
        "JetStreamConfig",
        "JetStreamStatistics",
        "JetStreamTransport",
        "PermanentError",
        "ReplayStarted",
        "RetryPolicy",
        "SchemaError",
        "SchemaRegistry",
        "StreamClient",
        "StreamState",
        "StreamUnavailable",
        "SubscriptionInfo",
        "TransientError",
        "Transport",
        "TransportStatistics",
        "Upcaster",
        "WIRE_VERSION",
        "decode",
        "default_registry",
        "encode",
        "event",
        "event_view",
        "is_retryable",
        "open_event_bus",
        "open_stream_admin",
        "ordering_key",
        "parse_events_url",
        "upcaster",
        "validate_traceparent",
        "view_of",
    },
    "triotok.store": {
        "Backend",
        "ConflictError",
        "DEFAULT_STORE_URL",
        "DeadLetteredEvent",
        "DurableDeadLetterLog",
        "EventDeadLetters",
        "GetPosition",
        "GetStatistics",
        "GuardedStore",
        "InboxConsumer",
        "InboxHandler",
        "InboxStatistics",
        "LATEST_VERSION",
        "MIGRATIONS",
        "Migration",
        "NotFound",
        "OUTBOX_CHANNEL",
        "OutboxFeed",
        "OutboxRelay",
        "OutboxRetry",
        "OutboxRow",
        "OutboxTransport",
        "OutboxTransportStatistics",
        "Ping",
        "PostgresConfig",
        "RelayStatistics",
        "RetryDecision",
        "Row",
        "SQLITE_NOW",
        "STORE_SCHEMA",
        "Schema",
        "SchemaTooNew",
        "SqliteConfig",
        "Store",
        "StoreBreakers",
        "StoreError",
        "StoreHandle",
        "StoreLike",
        "StoreOwner",
        "StoreSource",
        "StoreStatistics",
        "StoreUnavailable",
        "UnitOfWork",
        "Wake",
        "Wakeups",
        "default_node_id",
        "parse_timestamp",
        "row_timestamp",
        "idempotent",
        "open_store",
        "outbox_head",
        "parse_store_url",
    },
    "triotok.modules": {
        "ACTIONS",
        "CachedLookup",
        "Directory",
        "Flag",
        "FlagEvaluation",
        "FlagSet",
        "FlagStatistics",
        "Grant",
        "HealthCheck",
        "HealthChecks",
        "HealthReport",
        "Invalidate",
        "Module",
        "ModuleContext",
        "Permission",
        "RoleTable",
        "SubscriberActor",
        "Subscription",
        "Who",
        "authorize",
        "check_modules",
        "record_change",
    },
    "triotok.modules.access": {
        "ACCESS",
        "ApiKey",
        "ApiKeyRepository",
        "ApiKeyRevoked",
        "KeyDirectory",
        "KeyResolver",
        "Role",
        "hash_key",
        "parse_key",
        "verify_key",
    },
    "triotok.modules.commerce": {
        "COMMERCE",
        "CONSUMER",
        "CURRENCIES",
        "REGION_PATH",
        "TRANSITIONS",
        "AdjustInventory",
        "ArchiveProduct",
        "BelowReserved",
        "Command",
        "CreateProduct",
        "GetProduct",
        "InvalidTransition",
        "Inventory",
        "Item",
        "Outcome",
        "Product",
        "ProductEntity",
        "ProductExists",
        "ProductIsArchived",
        "ProductRepository",
        "ProductService",
        "ReservationResult",
        "SkuTaken",
        "StaleProduct",
        "Status",
        "UpdateProduct",
        "VersionMismatch",
        "Who",
        "allowed",
        "apply",
        "command_to",
    },
    "triotok.modules.orders": {
        "AnswerReservation",
        "CONSUMER",
        "CancelOrder",
        "Cancelled",
        "Change",
        "Charge",
        "Command",
        "Confirmed",
        "DeliverOrder",
        "Delivered",
        "GetOrder",
        "HttpProvider",
        "InvalidTransition",
        "Item",
        "Line",
        "ManualProvider",
        "ORDERS",
        "Order",
        "OrderEntity",
        "OrderExists",
        "OrderRepository",
        "OrderService",
        "Paid",
        "PayOrder",
        "Payment",
        "PaymentDeclined",
        "PaymentError",
        "PaymentGateway",
        "PaymentProvider",
        "Payments",
        "Pending",
        "PlaceOrder",
        "Pricing",
        "ProviderUnavailable",
        "REGION_PATH",
        "Refund",
        "ShipOrder",
        "Shipped",
        "StaleOrder",
        "State",
        "Status",
        "TRANSITIONS",
        "VersionMismatch",
        "allowed",
        "cancel",
        "check_items",
        "confirm",
        "deliver",
        "expect",
        "new_order_id",
        "pay",
        "place",
        "refund",
        "ship",
    },
    "triotok.modules.content": {
        "CONTENT",
        "Command",
        "ContentNode",
        "ContentRepository",
        "ContentService",
        "CreateNode",
        "GetNode",
        "InvalidTransition",
        "NodeEntity",
        "REGION_PATH",
        "SlugTaken",
        "StaleNode",
        "Status",
        "TRANSITIONS",
        "TransitionNode",
        "Translation",
        "UpdateNode",
        "VersionMismatch",
        "Who",
        "allowed",
        "apply",
    },
    "triotok.modules.search": {
        "Applied",
        "CONSUMER",
        "Clause",
        "IndexMonitor",
        "InvalidQuery",
        "KINDS",
        "LagReport",
        "NodeDoc",
        "NodeGone",
        "ProductDoc",
        "ProjectionStatistics",
        "Projector",
        "Query",
        "RebuildOptions",
        "RebuildProgress",
        "RebuildRunning",
        "RebuildStatistics",
        "Rebuilder",
        "SEARCH",
        "SearchReader",
        "SearchRequest",
        "SearchResult",
        "SearchService",
        "SearchSettings",
        "StartRebuild",
        "StockLevels",
        "TextConfigs",
        "TranslationDoc",
        "changes_of",
        "describe_progress",
        "fold",
        "has_applied",
        "latest_rebuilds",
        "matches",
        "measure_lag",
        "parse_query",
        "plain_text",
        "to_fts5",
        "to_tsquery",
        "words",
    },
    "triotok.modules.audit": {
        "AUDIT",
        "AuditEntry",
        "AuditRecord",
        "list_entries",
        "record",
    },
    "triotok.modules.flags": {
        "FLAGS",
        "FlagLoader",
        "FlagRepository",
        "Reload",
        "TriotokProvider",
    },
    "triotok.modules.modes": {
        "MODES",
        "ModeControl",
        "ModeMonitor",
        "Sample",
    },
    "triotok.modules.tenants": {
        "TENANTS",
        "TENANT_ID_PATTERN",
        "Tenant",
        "TenantCreated",
        "TenantDeactivated",
        "TenantDirectory",
        "TenantRepository",
        "TenantRepositoryStatistics",
        "TenantResolver",
        "TenantUpdated",
        "validate_tenant_id",
    },
    "triotok.http": {
        "IDEMPOTENCY",
        "IdempotencyKeys",
        "MetricsServer",
        "Call",
        "GetPort",
        "HttpOptions",
        "HttpServer",
        "PROBLEM_JSON",
        "Reply",
        "Route",
        "SECURITY_HEADERS",
        "SYSTEM",
        "Services",
        "StaleResponses",
        "StaleStatistics",
        "UUID_PATH_SCHEMA",
        "all_routes",
        "bind_socket",
        "create_app",
        "decode_cursor",
        "encode_cursor",
        "expected_version",
        "hypercorn_config",
        "if_match",
        "not_modified",
        "json_bytes",
        "openapi_document",
        "plugin_routes",
    },
    "triotok.plugins": {
        "API_VERSION",
        "ENTRY_POINT_GROUP",
        "EVENT_PATTERN",
        "HOST_PATTERN",
        "NAMESPACE_PATTERN",
        "NAME_PATTERN",
        "CapabilityDenied",
        "Capabilities",
        "Conflict",
        "Discovered",
        "Endpoint",
        "HttpReply",
        "InvalidInput",
        "Isolation",
        "Limits",
        "Metadata",
        "NotFound",
        "Plugin",
        "PluginContext",
        "PluginCrashed",
        "PluginError",
        "PluginManager",
        "PluginNotFound",
        "PluginOptions",
        "PluginRefused",
        "PluginRequest",
        "PluginResponse",
        "PluginState",
        "PluginStatus",
        "PluginTimeout",
        "PluginUnavailable",
        "Scope",
        "Storage",
        "Version",
        "VersionRange",
        "current_scope",
        "discover",
        "endpoint_path",
    },
    "triotok.plugins.seo": {"SEO", "Analysis", "Seo", "SeoReport", "analyse", "slugify"},
    "triotok.plugins.webhooks": {"SIGNATURE_HEADER", "WEBHOOKS", "Webhooks", "sign", "verify"},
    "triotok.testing": {
        "ActorStateMachine",
        "NatsNotInstalled",
        "NatsServer",
        "PostgresCluster",
        "PluginHarness",
        "PostgresNotInstalled",
        "TestSystem",
        "open_plugin_harness",
        "open_test_system",
    },
}

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
    "triotok.resilience": [
        "CircuitBreaker",
        "BreakerState",
        "CircuitOpen",
        "SingleFlight",
        "LoadingCache",
        "Backoff",
        "RateLimiter",
    ],
    "triotok.modules": ["Module"],
}


def _ours(obj: object) -> bool:
    return (inspect.isclass(obj) or inspect.isfunction(obj)) and getattr(
        obj, "__module__", ""
    ).startswith("triotok")


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_all_is_pinned_exactly(module: str) -> None:
    mod = importlib.import_module(module)
    assert isinstance(mod.__all__, tuple)
    assert len(set(mod.__all__)) == len(mod.__all__), "a name listed twice"
    assert set(mod.__all__) == PUBLIC[module]
    assert [n for n in mod.__all__ if not hasattr(mod, n)] == []


def test_every_public_package_is_pinned() -> None:
    import pkgutil

    import triotok

    found = {"triotok", "triotok.actors.lowlevel"}
    for info in pkgutil.walk_packages(triotok.__path__, "triotok."):
        if info.ispkg and not is_private_module(info.name):
            found.add(info.name)
    assert found == set(PUBLIC)


@pytest.mark.parametrize("module", sorted(CONTRACT))
def test_contract_names_are_exported(module: str) -> None:
    mod = importlib.import_module(module)
    assert [name for name in CONTRACT[module] if not hasattr(mod, name)] == []
    assert set(CONTRACT[module]) <= set(mod.__all__)


def test_the_old_paths_export_the_same_objects_as_the_new_home() -> None:
    from triotok import actors, resilience, supervision, transport

    for name in ("SingleFlight", "LoadingCache", "CacheStatistics", "open_singleflight"):
        assert getattr(actors, name) is getattr(resilience, name)
    for name in ("Backoff", "CircuitBreaker", "BreakerState", "CircuitOpen", "RateLimiter"):
        assert getattr(supervision, name) is getattr(resilience, name)
    assert transport.RetryPolicy is resilience.RetryPolicy
    assert transport.is_retryable is resilience.is_retryable


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_names_report_their_public_module(module: str) -> None:
    """``__module__`` is a public path that really exports the name (trio's rule)."""
    mod = importlib.import_module(module)
    wrong = []
    for name in mod.__all__:
        obj = getattr(mod, name)
        if not _ours(obj):
            continue
        home = obj.__module__
        exported = getattr(importlib.import_module(home), obj.__name__, None)  # aliases too
        if is_private_module(home) or exported is not obj:
            wrong.append(f"{name}: {home}")
    assert wrong == []


def test_the_home_is_the_lowest_package_exporting_a_name() -> None:
    from triotok import TriotokError, actors, resilience, supervision

    assert resilience.CircuitBreaker.__module__ == "triotok.resilience"
    assert supervision.CircuitOpen.__module__ == "triotok.resilience"
    assert actors.ActorRef.__module__ == "triotok.actors"
    assert actors.ActorRef.tell.__module__ == "triotok.actors"
    assert supervision.SupervisorSpec.__module__ == "triotok.supervision"
    assert TriotokError.__module__ == "triotok"
    assert repr(resilience.BreakerState.OPEN).startswith("<BreakerState.OPEN")


@pytest.mark.parametrize("module", sorted(PUBLIC))
def test_public_classes_and_functions_have_docstrings(module: str) -> None:
    mod = importlib.import_module(module)
    missing = [n for n in mod.__all__ if _ours(getattr(mod, n)) and not getattr(mod, n).__doc__]
    assert missing == []


def test_errors_share_one_root() -> None:
    from triotok import TriotokError, actors, resilience, supervision, transport

    for error in (
        actors.ActorError,
        actors.MailboxFull,
        actors.AskTimeout,
        actors.ActorCrashed,
        actors.ActorStopped,
        supervision.CircuitOpen,
        resilience.RateLimited,
        transport.SchemaError,
    ):
        assert issubclass(error, TriotokError)
        assert isinstance(error.code, str)
        assert error.code


# ------------------------------------------------------------------ the helper itself


def _fake_package(name: str, source: str) -> types.ModuleType:
    module = types.ModuleType(name)
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


def test_fixup_claims_only_names_that_still_report_a_private_module() -> None:
    private = _fake_package(
        "triotok.fake._impl",
        "class Thing:\n    def run(self): pass\n    class Inner: pass\n"
        "def helper(): pass\nclass Other: pass\nclass Hidden: pass\n",
    )
    Other = private.Other
    Other.__module__ = "triotok.lower"  # already claimed by a lower package
    namespace = {
        "__all__": ("Thing", "helper", "Other", "int_"),
        "Thing": private.Thing,
        "helper": private.helper,
        "Other": Other,
        "int_": int,
        "Hidden": private.Hidden,
    }
    fixup_module_metadata("triotok.fake", namespace)
    assert private.Thing.__module__ == "triotok.fake"
    assert private.Thing.run.__module__ == "triotok.fake"
    assert private.Thing.Inner.__module__ == "triotok.fake"
    assert private.helper.__module__ == "triotok.fake"
    assert Other.__module__ == "triotok.lower"
    assert int.__module__ == "builtins"
    assert private.Hidden.__module__ == "triotok.fake._impl"  # not in __all__

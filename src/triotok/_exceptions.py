"""The one exception tree of TrioToK.

Every error the library raises on purpose derives from :class:`TriotokError`.
Each class carries a stable ``code`` (used by HTTP problem+json and logs), a
``severity`` and whether retrying the same operation can succeed
(``retryable``).  Layers re-export the names that belong to them
(``triotok.actors``, ``triotok.supervision``, ``triotok.transport``,
``triotok.store``); this module is a leaf that imports nothing of ours, so
every layer may use it.

::

    TriotokError
    ├── InvalidConfig (ValueError)        a spec or setting is out of its domain
    ├── ActorError
    │   ├── MailboxFull                   tell/send refused by the overflow policy
    │   ├── AskTimeout (TimeoutError)     no reply within the ask timeout
    │   ├── ActorCrashed                  the handler raised; carries path + cause
    │   ├── ActorStopped                  the target is stopped or stopped meanwhile
    │   ├── ActorNotFound (LookupError)   no actor at that path
    │   ├── UnknownMessage (TypeError)    an actor does not handle that message type
    │   ├── SupervisorFailed              restart intensity exceeded (escalation)
    │   ├── ChildStartFailed              a child's factory or on_start raised
    │   └── EntityPoisoned                an entity crashed past its intensity; key refused
    ├── CircuitOpen                       breaker rejects the call; has retry_after
    ├── RateLimited                       limiter denies; has retry_after
    ├── SchemaError (ValueError)          bytes or payload do not match a schema
    ├── EventError
    │   ├── PermanentError                handler error that retrying cannot fix
    │   ├── TransientError                handler error worth retrying
    │   └── StreamUnavailable             the L2 event stream is down / unreachable (retryable)
    ├── StoreError
    │   ├── StoreUnavailable              database down / unreachable (retryable)
    │   ├── SchemaTooNew                  database migrated by newer code
    │   ├── ConflictError                 unique/optimistic-concurrency violation
    │   │   └── EntityConflict            still conflicting after a reload and one retry
    │   └── NotFound (LookupError)        no such row
    ├── DomainError                       what a module refuses (http maps it)
    │   ├── Unauthenticated               no, an unknown or a revoked credential
    │   ├── Forbidden                     the caller may not do this
    │   ├── InvalidInput (ValueError)     a value out of its domain; names the field
    │   ├── Conflict                      the command conflicts with the current state
    │   ├── PreconditionFailed            the caller's expected version is not current
    │   ├── PreconditionRequired          a write that needs an expected version got none
    │   ├── PaymentRefused                the payment a command needs was refused (declined)
    │   └── DependencyUnavailable         an outside service a command needs is down; retry_after
    └── RequestError                      HTTP-facing errors (see triotok.http)
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

Severity = Literal["debug", "info", "warning", "error", "critical"]

__all__ = (
    "ActorCrashed",
    "ActorError",
    "ActorNotFound",
    "ActorStopped",
    "AskTimeout",
    "ChildStartFailed",
    "CircuitOpen",
    "Conflict",
    "ConflictError",
    "DependencyUnavailable",
    "DomainError",
    "EntityConflict",
    "EntityPoisoned",
    "EventError",
    "Forbidden",
    "InvalidConfig",
    "InvalidInput",
    "MailboxFull",
    "NotFound",
    "PaymentRefused",
    "PermanentError",
    "PreconditionFailed",
    "PreconditionRequired",
    "RateLimited",
    "RequestError",
    "SchemaError",
    "SchemaTooNew",
    "Severity",
    "StoreError",
    "StoreUnavailable",
    "StreamUnavailable",
    "SupervisorFailed",
    "TransientError",
    "TriotokError",
    "Unauthenticated",
    "UnknownMessage",
)


class TriotokError(Exception):
    """Root of every error TrioToK raises on purpose.

    ``code`` is stable across releases (clients and dashboards key on it),
    ``severity`` guides logging, ``retryable`` tells a caller whether the same
    call may succeed later.
    """

    code: ClassVar[str] = "triotok_error"
    severity: ClassVar[Severity] = "error"
    retryable: ClassVar[bool] = False


class InvalidConfig(TriotokError, ValueError):
    """A specification or setting is outside its domain.

    ``field`` names the offending parameter; the message says why.
    """

    code = "invalid_config"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


# --------------------------------------------------------------------------- actors


class ActorError(TriotokError):
    """Base of errors about actors and their messages."""

    code = "actor_error"


class MailboxFull(ActorError):
    """The target mailbox is full and its overflow policy refuses the message."""

    code = "mailbox_full"
    severity = "warning"
    retryable = True

    def __init__(self, path: str, capacity: int) -> None:
        super().__init__(f"mailbox of {path} is full (capacity {capacity})")
        self.path = path
        self.capacity = capacity


class AskTimeout(ActorError, TimeoutError):
    """No reply arrived within the ask timeout."""

    code = "ask_timeout"
    severity = "warning"
    retryable = True

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__(f"{path} did not reply within {timeout:g}s")
        self.path = path
        self.timeout = timeout


class ActorCrashed(ActorError):
    """The actor raised while handling the message; ``cause`` is the original error."""

    code = "actor_crashed"

    def __init__(self, path: str, cause: BaseException) -> None:
        super().__init__(f"{path} crashed: {type(cause).__name__}: {cause}")
        self.path = path
        self.cause = cause
        self.__cause__ = cause


class ActorStopped(ActorError):
    """The actor is stopped (or stopped before it handled the message)."""

    code = "actor_stopped"
    severity = "warning"

    def __init__(self, path: str) -> None:
        super().__init__(f"{path} is stopped")
        self.path = path


class ActorNotFound(ActorError, LookupError):
    """No live actor is registered at that path."""

    code = "actor_not_found"
    severity = "warning"

    def __init__(self, path: str) -> None:
        super().__init__(f"no actor at {path}")
        self.path = path


class UnknownMessage(ActorError, TypeError):
    """An actor was sent a message it does not handle (a bare string, or a type it never takes).

    Raised by ``receive``, so it crashes that incarnation like any handler
    error: an asker gets :class:`ActorCrashed` whose ``cause`` is this error.
    ``path`` is the actor's, ``message`` what it got, ``expected`` the names
    of the message types it takes.
    """

    code = "unknown_message"

    def __init__(self, path: str, message: Any, expected: tuple[type, ...]) -> None:
        names = ", ".join(t.__name__ for t in expected) or "nothing"
        super().__init__(
            f"{path}: unknown message {message!r} ({type(message).__name__}); it takes {names}"
        )
        self.path = path
        self.message = message
        self.expected = expected


class SupervisorFailed(ActorError):
    """A supervisor exceeded its restart intensity and gave up (OTP escalation)."""

    code = "supervisor_failed"
    severity = "critical"

    def __init__(
        self, path: str, restarts: int, period: float, cause: BaseException | None
    ) -> None:
        reason = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        super().__init__(f"{path} exceeded {restarts} restarts in {period:g}s{reason}")
        self.path = path
        self.restarts = restarts
        self.period = period
        self.cause = cause


class ChildStartFailed(ActorError):
    """A child could not start: its factory or ``on_start`` raised (OTP ``{error, Reason}``).

    Raised to whoever started it (``start_child``, ``spawn``,
    ``spawn_supervisor``, a parent supervisor starting its spec children).
    ``path`` is the child's; ``cause`` (also ``__cause__``) is the original
    exception, itself a :class:`ChildStartFailed` when a nested supervisor
    could not start one of its own children.  No child is kept.
    """

    code = "child_start_failed"

    def __init__(self, path: str, cause: BaseException) -> None:
        super().__init__(f"{path} failed to start: {type(cause).__name__}: {cause}")
        self.path = path
        self.cause = cause
        self.__cause__ = cause


class EntityPoisoned(ActorError):
    """An entity crashed more than its region's intensity allows and was stopped.

    Its key answers this error (without activating it) until an operator
    restarts it (``region.restart(key)`` or ``system.restart(path)``).
    ``cause`` is the last crash.
    """

    code = "entity_poisoned"

    def __init__(self, path: str, key: object, crashes: int, cause: BaseException | None) -> None:
        reason = f": {type(cause).__name__}: {cause}" if cause is not None else ""
        super().__init__(f"entity {path} is poisoned after {crashes} crashes{reason}")
        self.path = path
        self.key = key
        self.crashes = crashes
        self.cause = cause


# --------------------------------------------------------------------------- resilience


class CircuitOpen(TriotokError):
    """The circuit breaker rejected the call without running it."""

    code = "circuit_open"
    severity = "warning"
    retryable = True

    def __init__(self, name: str, state: str, retry_after: float) -> None:
        super().__init__(f"circuit {name!r} is {state}; retry after {retry_after:.3f}s")
        self.name = name
        self.state = state
        self.retry_after = retry_after


class RateLimited(TriotokError):
    """A rate limiter denied the request."""

    code = "rate_limited"
    severity = "info"
    retryable = True

    def __init__(self, key: str, retry_after: float, reason: str = "rate limit exceeded") -> None:
        super().__init__(f"{key}: {reason}; retry after {retry_after:.3f}s")
        self.key = key
        self.retry_after = retry_after
        self.reason = reason


# --------------------------------------------------------------------------- events


class SchemaError(TriotokError, ValueError):
    """Bytes or a payload do not match any known schema (never a silent drop)."""

    code = "schema_error"


class EventError(TriotokError):
    """Base of errors a subscriber may raise to steer retries."""

    code = "event_error"


class PermanentError(EventError):
    """Retrying cannot help: the bus dead-letters the event at once."""

    code = "permanent_error"


class TransientError(EventError):
    """Worth retrying: the bus retries with backoff, then dead-letters."""

    code = "transient_error"
    retryable = True


class StreamUnavailable(EventError):
    """The L2 event stream (NATS JetStream) cannot be reached; the outbox keeps the events."""

    code = "stream_unavailable"
    severity = "warning"
    retryable = True


# --------------------------------------------------------------------------- store


class StoreError(TriotokError):
    """Base of storage errors."""

    code = "store_error"


class StoreUnavailable(StoreError):
    """The database cannot be reached right now; the store recovers by itself."""

    code = "store_unavailable"
    retryable = True


class SchemaTooNew(StoreError):
    """The database schema was migrated by newer code; refusing to touch it."""

    code = "schema_too_new"
    severity = "critical"


class ConflictError(StoreError):
    """A unique or optimistic-concurrency constraint was violated.

    When the database reports a unique violation, ``table`` and ``columns``
    name the table and the columns of the violated key, in the key's order,
    the same on every backend (``("content_translations", ("tenant_id",
    "locale", "slug"))``), so a caller can tell a taken slug from a taken id
    without parsing messages; they are ``None`` and ``()`` otherwise.
    """

    code = "conflict"
    severity = "warning"
    table: str | None = None
    columns: tuple[str, ...] = ()

    def __init__(
        self, *args: object, table: str | None = None, columns: tuple[str, ...] = ()
    ) -> None:
        super().__init__(*args)
        if table is not None:
            self.table = table
        if columns:
            self.columns = tuple(columns)

    def violates(self, table: str, *columns: str) -> bool:
        """Whether this is a unique violation of the key ``columns`` of ``table``."""
        return self.table == table and self.columns == columns


class EntityConflict(ConflictError):
    """An entity's write still conflicted after its state was reloaded and the command retried.

    Answered to the command's asker (not a dead letter: the caller decides
    whether to try again).  ``cause`` is the second conflict.
    """

    code = "entity_conflict"
    retryable = True

    def __init__(self, path: str, key: object, cause: BaseException) -> None:
        table, columns = getattr(cause, "table", None), getattr(cause, "columns", ())
        # A unique violation is named by its key, never by the database's own
        # text (which quotes values and constraint names): the message reaches HTTP clients.
        what = f"the key ({', '.join(columns)}) of {table} is taken" if table else str(cause)
        super().__init__(f"entity {path}: conflicting write after a reload and a retry: {what}")
        self.path = path
        self.key = key
        self.cause = cause
        self.__cause__ = cause


class NotFound(StoreError, LookupError):
    """No such row or resource."""

    code = "not_found"
    severity = "info"


# --------------------------------------------------------------------------- domain


class DomainError(TriotokError):
    """What a module refuses, in its own words; only ``triotok.http`` maps it to a status.

    ``code`` may be refined per instance (``Forbidden(..., code="tenant_mismatch")``);
    ``extra`` carries fields a client may act on (``field``, ``allowed``, ...).
    """

    code = "domain_error"
    severity: ClassVar[Severity] = "info"

    def __init__(self, detail: str, *, code: str | None = None, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        if code is not None:
            self.code = code  # type: ignore[misc]  # instance override of the class default
        self.extra = extra


class Unauthenticated(DomainError):
    """No credential, or one that is unknown or revoked."""

    code = "unauthenticated"


class Forbidden(DomainError):
    """The caller is known but may not do this."""

    code = "forbidden"


class InvalidInput(DomainError, ValueError):
    """A value is out of its domain; ``extra["field"]`` names it when known."""

    code = "invalid_input"


class Conflict(DomainError):
    """The command conflicts with the current state (an illegal transition, a taken slug)."""

    code = "conflict"


class PreconditionFailed(DomainError):
    """The version the caller based its command on is not the current one."""

    code = "precondition_failed"


class PreconditionRequired(DomainError):
    """A command that must name the version it is based on did not."""

    code = "precondition_required"


class PaymentRefused(DomainError):
    """The payment a command needs was refused (a card declined); retrying the same will not help.

    ``extra["reason"]`` carries the refusal's reason when the payer gave one.
    """

    code = "payment_refused"


class DependencyUnavailable(DomainError):
    """A service outside the system that the command needs cannot answer now.

    A payment provider that fails or times out, or the circuit breaker in
    front of it while open. Retryable: ``retry_after`` is the seconds a
    caller should wait, or ``None`` when unknown.
    """

    code = "dependency_unavailable"
    severity = "warning"
    retryable = True

    def __init__(
        self,
        detail: str,
        *,
        retry_after: float | None = None,
        code: str | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail, code=code, **extra)
        self.retry_after = retry_after


# --------------------------------------------------------------------------- http


class RequestError(TriotokError):
    """An error answered to an HTTP client as problem+json with ``status``."""

    code = "bad_request"
    severity = "info"
    status: int = 400

    def __init__(
        self, detail: str, *, status: int | None = None, code: str | None = None, **extra: Any
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if status is not None:
            self.status = status
        if code is not None:
            self.code = code  # type: ignore[misc]  # instance override of the class default
        self.extra = extra

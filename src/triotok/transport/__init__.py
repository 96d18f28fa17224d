"""Events and transport: the versioned envelope, its CBOR codec, schemas, transports and the bus.

::

    from dataclasses import dataclass
    from triotok.transport import Envelope, event, upcaster, encode, decode

    @event("product.created", version=2)
    @dataclass(frozen=True)
    class ProductCreated:
        sku: str
        name: str

    @upcaster("product.created", from_version=1)
    def _add_name(raw):
        return {**raw, "name": raw["sku"]}

    envelope = Envelope.new(ProductCreated("a-1", "Apple"), tenant_id="acme")
    assert decode(encode(envelope)) == envelope
"""

from .._exceptions import InvalidConfig as InvalidConfig
from .._exceptions import PermanentError as PermanentError
from .._exceptions import SchemaError as SchemaError
from .._exceptions import StreamUnavailable as StreamUnavailable
from .._exceptions import TransientError as TransientError
from .._util import fixup_module_metadata
from ..resilience import RetryPolicy as RetryPolicy
from ..resilience import is_retryable as is_retryable
from ._bus import BusStatistics as BusStatistics
from ._bus import EventBus as EventBus
from ._bus import SubscriptionInfo as SubscriptionInfo
from ._bus_actor import BusActor as BusActor
from ._bus_actor import open_event_bus as open_event_bus
from ._codec import DEFAULT_MAX_SIZE as DEFAULT_MAX_SIZE
from ._codec import WIRE_VERSION as WIRE_VERSION
from ._codec import decode as decode
from ._codec import encode as encode
from ._dlq import DeadEvent as DeadEvent
from ._dlq import DeadLetterFilter as DeadLetterFilter
from ._dlq import DeadLetterLog as DeadLetterLog
from ._dlq import DeadLetterQueueStatistics as DeadLetterQueueStatistics
from ._dlq import DeadLetterStore as DeadLetterStore
from ._dlq import InMemoryDeadLetterLog as InMemoryDeadLetterLog
from ._dlq import InMemoryDeadLetterStore as InMemoryDeadLetterStore
from ._dlq_queue import DeadLetterQueue as DeadLetterQueue
from ._envelope import Envelope as Envelope
from ._envelope import validate_traceparent as validate_traceparent
from ._jetstream import ConsumerStatistics as ConsumerStatistics
from ._jetstream import JetStreamStatistics as JetStreamStatistics
from ._jetstream import JetStreamTransport as JetStreamTransport
from ._jetstream import ReplayStarted as ReplayStarted
from ._jetstream import StreamClient as StreamClient
from ._jetstream import open_stream_admin as open_stream_admin
from ._memory import InMemoryTransport as InMemoryTransport
from ._memory import TransportStatistics as TransportStatistics
from ._registry import EventSchema as EventSchema
from ._registry import SchemaRegistry as SchemaRegistry
from ._registry import Upcaster as Upcaster
from ._registry import default_registry as default_registry
from ._registry import event as event
from ._registry import event_view as event_view
from ._registry import upcaster as upcaster
from ._registry import view_of as view_of
from ._routing import ordering_key as ordering_key
from ._stream_names import ConsumerState as ConsumerState
from ._stream_names import JetStreamConfig as JetStreamConfig
from ._stream_names import StreamState as StreamState
from ._stream_names import parse_events_url as parse_events_url
from ._subscription import DeliveryHook as DeliveryHook
from ._transport import ConsumerGroup as ConsumerGroup
from ._transport import EventSink as EventSink
from ._transport import GroupSink as GroupSink
from ._transport import GroupTransport as GroupTransport
from ._transport import Transport as Transport

__all__ = (
    "DEFAULT_MAX_SIZE",
    "WIRE_VERSION",
    "BusActor",
    "BusStatistics",
    "ConsumerGroup",
    "ConsumerState",
    "ConsumerStatistics",
    "DeadEvent",
    "DeadLetterFilter",
    "DeadLetterLog",
    "DeadLetterQueue",
    "DeadLetterQueueStatistics",
    "DeadLetterStore",
    "DeliveryHook",
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
)

fixup_module_metadata(__name__, globals())

"""Telemetry: OpenTelemetry traces, Prometheus metrics and JSON logs, plugged into the core.

The core (actors, supervision, resilience) imports nothing of this: it offers
seams (``Runtime.context_capture`` and ``message_hook``, ``on_state_change``,
``on_register``, every ``statistics()``), and so do the store (a wrapped
``Store`` behind the ``StoreHandle``), the relay (its sink) and the bus
(``EventBus.delivery_hook``). :class:`Telemetry` fills them in; the
composition root (``triotok.app``) wires it from the settings.

::

    from triotok.telemetry import Telemetry, TelemetryOptions, configure_logging, span

    telemetry = Telemetry(TelemetryOptions(tracing="otlp", sample_ratio=0.1))
    configure_logging("info", "json")

See docs/reference/telemetry.md for the settings, span names and metric names.
"""

from .._util import fixup_module_metadata
from ._logs import REQUEST_SCOPE as REQUEST_SCOPE
from ._logs import ContextFilter as ContextFilter
from ._logs import configure_logging as configure_logging
from ._options import EXPORTERS as EXPORTERS
from ._options import LOG_FORMATS as LOG_FORMATS
from ._options import TelemetryOptions as TelemetryOptions
from ._telemetry import Telemetry as Telemetry
from ._telemetry import span as span

__all__ = (
    "EXPORTERS",
    "LOG_FORMATS",
    "REQUEST_SCOPE",
    "ContextFilter",
    "Telemetry",
    "TelemetryOptions",
    "configure_logging",
    "span",
)

fixup_module_metadata(__name__, globals())

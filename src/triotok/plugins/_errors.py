"""The plugins' branch of the exception tree (``TriotokError`` is its root)::

    TriotokError
    └── PluginError                       something about a plugin failed
        ├── CapabilityDenied (Forbidden)  a call outside the plugin's grant (counted)
        ├── PluginRefused (InvalidConfig) discovery refused it: API range, name, import
        ├── PluginNotFound (LookupError)  no plugin of that name was discovered
        ├── PluginUnavailable             not running (disabled, failed, switched off)
        ├── PluginTimeout (TimeoutError)  a call exceeded its per-message deadline
        └── PluginCrashed                 the plugin failed while handling a call

Errors raised inside a process-isolated plugin cross the pipe as their code
and message and are raised again on the other side as one of these (or a
:class:`PluginCrashed` naming the original type).
"""

from __future__ import annotations

from .._exceptions import Forbidden, InvalidConfig, TriotokError

__all__ = (
    "CapabilityDenied",
    "PluginCrashed",
    "PluginError",
    "PluginNotFound",
    "PluginRefused",
    "PluginTimeout",
    "PluginUnavailable",
)


class PluginError(TriotokError):
    """Base of the errors about plugins; ``plugin`` names the plugin."""

    code = "plugin_error"

    def __init__(self, plugin: str, message: str) -> None:
        # Not super(): the second bases (Forbidden, InvalidConfig) take other
        # arguments; their attributes are set by the subclasses below.
        Exception.__init__(self, f"plugin {plugin!r}: {message}")
        self.plugin = plugin
        self.message = message


class CapabilityDenied(PluginError, Forbidden):
    """The plugin asked for something its grant does not cover.

    ``capability`` is one of ``publish``, ``subscribe``, ``http``, ``storage``,
    ``routes``; ``target`` is what it asked for (an event type, a host, a
    namespace or tenant). Every refusal is counted per plugin and capability.
    """

    code = "capability_denied"

    def __init__(self, plugin: str, capability: str, target: str, reason: str = "") -> None:
        message = f"{capability} {target!r} is outside its grant" + (
            f": {reason}" if reason else ""
        )
        PluginError.__init__(self, plugin, message)
        self.detail = str(self)
        self.extra = {"plugin": plugin, "capability": capability, "target": target}
        self.capability = capability
        self.target = target


class PluginRefused(PluginError, InvalidConfig):
    """Discovery refused the plugin (shown as ``failed`` with this reason)."""

    code = "plugin_refused"

    def __init__(self, plugin: str, reason: str) -> None:
        PluginError.__init__(self, plugin, reason)
        self.field = "plugin"
        self.reason = reason


class PluginNotFound(PluginError, LookupError):
    """No plugin of that name was discovered."""

    code = "plugin_not_found"
    severity = "info"

    def __init__(self, plugin: str) -> None:
        super().__init__(plugin, "no such plugin")


class PluginUnavailable(PluginError):
    """The plugin is not running (or the tenant switched it off)."""

    code = "plugin_unavailable"
    severity = "info"
    retryable = True


class PluginTimeout(PluginError, TimeoutError):
    """A call into the plugin exceeded its per-message deadline (the plugin is restarted)."""

    code = "plugin_timeout"
    severity = "warning"
    retryable = True


class PluginCrashed(PluginError):
    """The plugin raised, or its process died, while handling a call."""

    code = "plugin_crashed"
    severity = "warning"
    retryable = True

"""An OpenFeature provider over the node's flags, for code written against the standard API.

::

    from openfeature import api
    from triotok.modules.flags import TriotokProvider

    api.set_provider(TriotokProvider(ctx.flags))
    client = api.get_client()
    client.get_boolean_value("checkout.v2", False, EvaluationContext(targeting_key="acme"))

The evaluation context's ``targeting_key`` is the tenant; an attribute
``key`` (an API key id) serves flags rolled out by key. TrioToK's flags are
booleans: a string, number or object evaluation answers its default with
``TYPE_MISMATCH``. Evaluation is the same in-memory lookup as
``ctx.flags.enabled``, so the provider adds no I/O and no cache of its own.

What it adds: OpenFeature's hooks (logging, telemetry), its evaluation
details (reason, variant), and portability: a plugin or library written
against ``openfeature`` runs on TrioToK's flags unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, Reason
from openfeature.provider import AbstractProvider, Metadata

from .._flags import FlagSet

__all__ = ("TriotokProvider",)

_REASONS = {
    "unknown": Reason.DEFAULT,
    "off": Reason.DISABLED,
    "denied": Reason.TARGETING_MATCH,
    "tenant": Reason.TARGETING_MATCH,
    "allowed": Reason.TARGETING_MATCH,
    "rollout": Reason.SPLIT,
    "excluded": Reason.SPLIT,
}


class TriotokProvider(AbstractProvider):
    """OpenFeature's view of a :class:`~triotok.modules.FlagSet` (see the module docstring)."""

    def __init__(self, flags: FlagSet) -> None:
        super().__init__()
        self._flags = flags

    def get_metadata(self) -> Metadata:
        return Metadata(name="triotok")

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        tenant = key = None
        if evaluation_context is not None:
            tenant = evaluation_context.targeting_key
            attribute = evaluation_context.attributes.get("key")
            key = attribute if isinstance(attribute, str) else None
        verdict = self._flags.evaluate(flag_key, tenant=tenant, key=key, default=default_value)
        if verdict.reason == "unknown":
            return FlagResolutionDetails(
                default_value,
                error_code=ErrorCode.FLAG_NOT_FOUND,
                error_message=f"no flag {flag_key!r}",
                reason=Reason.ERROR,
            )
        return FlagResolutionDetails(
            verdict.value,
            reason=_REASONS[verdict.reason],
            variant="on" if verdict.value else "off",
            flag_metadata={"rule": verdict.reason},
        )

    def _mismatch(self, flag_key: str, default_value: Any) -> FlagResolutionDetails[Any]:
        return FlagResolutionDetails(
            default_value,
            error_code=ErrorCode.TYPE_MISMATCH,
            error_message=f"flag {flag_key!r} is a boolean",
            reason=Reason.ERROR,
        )

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._mismatch(flag_key, default_value)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._mismatch(flag_key, default_value)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._mismatch(flag_key, default_value)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[Any] | Mapping[str, Any],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[Any] | Mapping[str, Any]]:
        return self._mismatch(flag_key, default_value)

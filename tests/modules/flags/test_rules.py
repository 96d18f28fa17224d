"""The flag rules (no I/O): order of the rules, rollout percentages, the OpenFeature provider."""

from __future__ import annotations

import pytest
from openfeature import api
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from triotok.modules import Flag, FlagSet
from triotok.modules._flags import bucket
from triotok.modules.flags import TriotokProvider

TENANTS = [f"tenant-{n}" for n in range(10_000)]


def flag_set(*flags: Flag, values: dict[tuple[str, str], bool] | None = None) -> FlagSet:
    flags_ = FlagSet()
    flags_.replace_all(flags, values or {})
    return flags_


@pytest.mark.parametrize("percent", [0.5, 1, 10, 25, 50, 90, 99])
def test_rollout_percentages_hold_over_10000_tenants(percent: float) -> None:
    flags = flag_set(Flag("beta", enabled=True, rollout=percent))
    on = sum(flags.enabled("beta", tenant=t) for t in TENANTS)
    # Binomial: 3 standard deviations of 10,000 draws at p, at least 0.3 points.
    p = percent / 100
    tolerance = max(3 * (p * (1 - p) / len(TENANTS)) ** 0.5, 0.003)
    assert abs(on / len(TENANTS) - p) <= tolerance, (percent, on)


def test_raising_a_rollout_keeps_those_already_in() -> None:
    before = flag_set(Flag("beta", enabled=True, rollout=10))
    after = flag_set(Flag("beta", enabled=True, rollout=20))
    first = {t for t in TENANTS if before.enabled("beta", tenant=t)}
    second = {t for t in TENANTS if after.enabled("beta", tenant=t)}
    assert first < second


def test_flags_roll_out_independently() -> None:
    flags = flag_set(Flag("a", enabled=True, rollout=50), Flag("b", enabled=True, rollout=50))
    both = sum(flags.enabled("a", tenant=t) and flags.enabled("b", tenant=t) for t in TENANTS)
    assert abs(both / len(TENANTS) - 0.25) < 0.02


def test_buckets_are_pinned() -> None:
    # blake2b(name NUL subject) mod 10000: the same on every node, run and release.
    # A change here would move every tenant in or out of every rollout.
    assert bucket("beta", "acme") == 4390
    assert bucket("beta", "globex") == 7156
    assert bucket("checkout.v2", "acme") == 3339


def test_the_rules_in_order() -> None:
    flags = flag_set(
        Flag(
            "f",
            enabled=True,
            rollout=0,
            allow=frozenset({"allowed", "opted-out"}),
            deny=frozenset({"denied", "opted-in-but-denied"}),
            tenant_editable=True,
        ),
        Flag("killed", enabled=False, rollout=100, allow=frozenset({"allowed"})),
        Flag("by-key", enabled=True, rollout=50, by="key"),
        values={
            ("f", "opted-out"): False,
            ("f", "opted-in"): True,
            ("f", "opted-in-but-denied"): True,
        },
    )
    reasons = {
        t: flags.evaluate("f", tenant=t)
        for t in ("allowed", "opted-out", "denied", "opted-in", "opted-in-but-denied", "other")
    }
    assert {t: (e.value, e.reason) for t, e in reasons.items()} == {
        "allowed": (True, "allowed"),
        "opted-out": (False, "tenant"),
        "denied": (False, "denied"),
        "opted-in": (True, "tenant"),
        "opted-in-but-denied": (False, "denied"),
        "other": (False, "excluded"),
    }
    assert flags.evaluate("killed", tenant="allowed").reason == "off"
    assert flags.enabled("missing", tenant="x") is False
    assert flags.enabled("missing", tenant="x", default=True) is True
    assert flags.enabled("f") is False  # no tenant, rollout 0
    # By key: keys of one tenant split, and the tenant alone does not decide.
    keys = [f"k{n}" for n in range(2000)]
    on = sum(flags.enabled("by-key", tenant="acme", key=k) for k in keys)
    assert 850 < on < 1150


def test_a_tenant_choice_counts_only_for_tenant_editable_flags() -> None:
    flags = flag_set(Flag("ops", enabled=True, rollout=0), values={("ops", "acme"): True})
    assert flags.enabled("ops", tenant="acme") is False


@pytest.mark.parametrize(
    "rules",
    [{"rollout": 101}, {"rollout": -1}, {"rollout": True}, {"by": "ip"}, {"name": "Bad Name"}],
)
def test_bad_rules_are_refused(rules: dict[str, object]) -> None:
    from triotok._exceptions import InvalidInput

    with pytest.raises(InvalidInput):
        Flag(**{"name": "ok", **rules})  # type: ignore[arg-type]


def test_the_openfeature_provider_answers_with_the_same_rules() -> None:
    flags = flag_set(Flag("beta", enabled=True, rollout=0, allow=frozenset({"acme"})))
    api.set_provider(TriotokProvider(flags))
    try:
        client = api.get_client()
        acme = client.get_boolean_details("beta", False, EvaluationContext(targeting_key="acme"))
        other = client.get_boolean_details("beta", True, EvaluationContext(targeting_key="x"))
        missing = client.get_boolean_details("nope", True, EvaluationContext(targeting_key="x"))
        wrong = client.get_string_details("beta", "dflt", EvaluationContext(targeting_key="x"))
    finally:
        api.clear_providers()
    assert (acme.value, acme.reason, acme.variant) == (True, Reason.TARGETING_MATCH, "on")
    assert (other.value, other.reason) == (False, Reason.SPLIT)
    assert (missing.value, missing.error_code) == (True, ErrorCode.FLAG_NOT_FOUND)
    assert (wrong.value, wrong.error_code) == ("dflt", ErrorCode.TYPE_MISMATCH)
    assert flags.statistics().evaluations >= 3

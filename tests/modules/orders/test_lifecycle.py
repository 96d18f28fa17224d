"""The order lifecycle as types: the typed transitions are the table, mypy refuses the rest.

* each transition function's source and target types are exactly the
  ``(state, command) -> state`` pairs of ``TRANSITIONS``;
* ``expect`` narrows an ``Order[Any]`` to its state or raises
  ``InvalidTransition`` naming the allowed commands;
* mypy (the project's own, with its strict settings) reports an error for a
  program that ships a pending order or cancels a paid one without a refund,
  and none for one that follows the lifecycle.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import typing
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from triotok.modules.orders import (
    TRANSITIONS,
    Cancelled,
    Command,
    Confirmed,
    Delivered,
    InvalidTransition,
    Item,
    Line,
    Order,
    Paid,
    Payment,
    Pending,
    Pricing,
    Shipped,
    Status,
    allowed,
    cancel,
    confirm,
    deliver,
    expect,
    pay,
    place,
    refund,
    ship,
)

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2024, 5, 1, tzinfo=UTC)
STATES = {s.status: s for s in (Pending, Confirmed, Paid, Shipped, Delivered, Cancelled)}
FUNCTIONS = {
    confirm: Command.CONFIRM,
    pay: Command.PAY,
    ship: Command.SHIP,
    deliver: Command.DELIVER,
    cancel: Command.CANCEL,
    refund: Command.CANCEL,
}


def _state_of(hint: object) -> tuple[type, ...]:
    """The state types of ``Order[X]`` or ``Order[X] | Order[Y]``."""
    if typing.get_origin(hint) is Order:
        return typing.get_args(hint)
    return tuple(s for member in typing.get_args(hint) for s in _state_of(member))


def test_the_typed_transitions_are_exactly_the_table() -> None:
    typed: dict[tuple[Status, Command], Status] = {}
    for function, command in FUNCTIONS.items():
        hints = typing.get_type_hints(function)
        [target] = _state_of(hints["return"])
        for source in _state_of(hints["order"]):
            typed[source.status, command] = target.status  # type: ignore[attr-defined]
    assert typed == dict(TRANSITIONS)
    assert set(STATES) == set(Status)


def _pending() -> Order[Pending]:
    items = (Item("6f1c2d0e-8a4b-4c55-9d1e-2b3c4d5e6f70", 2),)
    return place(tenant_id="acme", order_id="o-1", items=items, placed_by="key:k", at=NOW)


PRICING = Pricing((Line("6f1c2d0e-8a4b-4c55-9d1e-2b3c4d5e6f70", 2, 500, "EUR"),), "EUR", 1000)


def test_each_transition_keeps_what_the_order_had_and_adds_one_change() -> None:
    pending = _pending()
    confirmed = confirm(pending, PRICING, at=NOW)
    paid = pay(confirmed, Payment("ch-1", "manual", 1000, "EUR"), at=NOW)
    shipped = ship(paid, "T-1", at=NOW)
    delivered = deliver(shipped, at=NOW)
    assert [o.version for o in (pending, confirmed, paid, shipped, delivered)] == [1, 2, 3, 4, 5]
    assert [c.status for c in delivered.history] == [
        Status.PENDING,
        Status.CONFIRMED,
        Status.PAID,
        Status.SHIPPED,
        Status.DELIVERED,
    ]
    assert delivered.state == Delivered(PRICING, paid.state.payment, "T-1")
    refunded = refund(paid, "re-1", "damaged", at=NOW)
    assert refunded.state == Cancelled("damaged", PRICING, paid.state.payment, "re-1")
    assert refunded.history[-1].reason == "damaged"
    assert cancel(pending, "insufficient_stock", at=NOW).state == Cancelled("insufficient_stock")
    assert cancel(confirmed, "requested", at=NOW).state.pricing == PRICING


@given(status=st.sampled_from(list(Status)), command=st.sampled_from(list(Command)))
def test_expect_narrows_or_names_what_is_allowed(status: Status, command: Command) -> None:
    source = {
        Command.CONFIRM: Pending,
        Command.PAY: Confirmed,
        Command.SHIP: Paid,
        Command.DELIVER: Shipped,
        Command.CANCEL: Pending,
    }[command]
    orders = {
        Status.PENDING: _pending(),
        Status.CONFIRMED: confirm(_pending(), PRICING, at=NOW),
    }
    orders[Status.PAID] = pay(orders[Status.CONFIRMED], Payment("c", "m", 1000, "EUR"), at=NOW)
    orders[Status.SHIPPED] = ship(orders[Status.PAID], "T", at=NOW)
    orders[Status.DELIVERED] = deliver(orders[Status.SHIPPED], at=NOW)
    orders[Status.CANCELLED] = cancel(_pending(), "x", at=NOW)
    order: Order[typing.Any] = orders[status]
    if source.status is status:
        assert expect(order, source, command) is order
        return
    with pytest.raises(InvalidTransition) as refused:
        expect(order, source, command)
    assert refused.value.code == "invalid_transition"
    assert refused.value.extra["current"] == status.value
    assert refused.value.extra["allowed"] == [c.value for c in allowed(status)]


WRONG = """
    from datetime import UTC, datetime

    from triotok.modules.orders import Item, Payment, Pricing, cancel, confirm, pay, place, ship

    now = datetime.now(UTC)
    order = place(tenant_id="t", order_id="o", items=(Item("p", 1),), placed_by="k", at=now)
    ship(order, "T-1", at=now)
    paid = pay(confirm(order, Pricing((), "EUR", 0), at=now), Payment("c", "m", 0, "EUR"), at=now)
    cancel(paid, "no refund", at=now)
"""

RIGHT = """
    from datetime import UTC, datetime

    from triotok.modules.orders import (
        Item, Order, Payment, Pricing, Shipped, confirm, deliver, pay, place, refund, ship,
    )

    now = datetime.now(UTC)
    order = place(tenant_id="t", order_id="o", items=(Item("p", 1),), placed_by="k", at=now)
    paid = pay(confirm(order, Pricing((), "EUR", 0), at=now), Payment("c", "m", 0, "EUR"), at=now)
    shipped: Order[Shipped] = ship(paid, "T-1", at=now)
    deliver(shipped, at=now)
    refund(paid, "re-1", "damaged", at=now)
"""


@pytest.mark.slow
def test_mypy_refuses_an_illegal_transition_and_accepts_a_legal_one(tmp_path: Path) -> None:
    (tmp_path / "wrong.py").write_text(textwrap.dedent(WRONG).lstrip())
    (tmp_path / "right.py").write_text(textwrap.dedent(RIGHT).lstrip())
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(ROOT / "pyproject.toml"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-error-summary",
            "wrong.py",
            "right.py",
        ],
        cwd=tmp_path,
        env={"MYPYPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    errors = [line for line in result.stdout.splitlines() if ": error:" in line]
    mine = [e for e in errors if e.startswith(("wrong.py", "right.py"))]
    assert mine == [
        'wrong.py:7: error: Argument 1 to "ship" has incompatible type "Order[Pending]";'
        ' expected "Order[Paid]"  [arg-type]',
        'wrong.py:9: error: Argument 1 to "cancel" has incompatible type "Order[Paid]";'
        ' expected "Order[Pending] | Order[Confirmed]"  [arg-type]',
    ], result.stdout + result.stderr
    assert result.returncode == 1

"""The content lifecycle as a pure state machine: every pair, and random walks."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from triotok.modules.content import TRANSITIONS, Command, InvalidTransition, Status, allowed, apply

LEGAL = {
    ("draft", "publish"): "published",
    ("published", "unpublish"): "draft",
    ("published", "archive"): "archived",
    ("archived", "restore"): "draft",
    ("draft", "delete"): "deleted",
    ("archived", "delete"): "deleted",
}


@pytest.mark.parametrize("state", list(Status))
@pytest.mark.parametrize("command", list(Command))
def test_every_pair_is_legal_exactly_as_specified(state: Status, command: Command) -> None:
    expected = LEGAL.get((state.value, command.value))
    if expected is None:
        with pytest.raises(InvalidTransition) as info:
            apply(state, command)
        error = info.value
        assert error.code == "invalid_transition"
        assert error.extra["current"] == state.value
        assert error.extra["allowed"] == [c.value for c in allowed(state)]
        assert state.value in str(error)
    else:
        assert apply(state, command).value == expected


def test_the_table_is_the_specification() -> None:
    assert {(s.value, c.value): t.value for (s, c), t in TRANSITIONS.items()} == LEGAL
    assert allowed(Status.PUBLISHED) == (Command.UNPUBLISH, Command.ARCHIVE)
    assert allowed(Status.DELETED) == ()


@given(st.lists(st.sampled_from(list(Command)), max_size=30))
def test_random_walks_only_take_legal_steps(commands: list[Command]) -> None:
    state = Status.DRAFT
    for command in commands:
        try:
            after = apply(state, command)
        except InvalidTransition:
            assert (state, command) not in TRANSITIONS
            continue
        assert TRANSITIONS[state, command] is after
        # A published node is never deleted in one step.
        assert not (state is Status.PUBLISHED and after is Status.DELETED)
        state = after
        if state is Status.DELETED:
            break

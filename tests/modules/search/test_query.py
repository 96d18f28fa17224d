"""The query syntax: what parses to what, what is refused, and what each store is given.

The user's text never reaches a store: the compiled expressions are made
only of words (letters and digits) and the syntax the compilers write.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from triotok.modules.search import (
    Clause,
    InvalidQuery,
    Query,
    matches,
    parse_query,
    to_fts5,
    to_tsquery,
    words,
)


def C(*words: str, prefix: bool = False, negated: bool = False) -> Clause:
    return Clause(tuple(words), prefix, negated)


@pytest.mark.parametrize(
    ("text", "clauses"),
    [
        ("blue mug", [C("blue"), C("mug")]),
        ("  Blue   MUG ", [C("blue"), C("mug")]),
        ('"blue mug"', [C("blue", "mug")]),
        ("blue-mug", [C("blue", "mug")]),
        ("mug*", [C("mug", prefix=True)]),
        ('"blue mu*"', [C("blue", "mu", prefix=True)]),
        ('"blue mu"*', [C("blue", "mu", prefix=True)]),
        ("mug -cracked", [C("mug"), C("cracked", negated=True)]),
        (
            'mug -"red cup" -ch*',
            [C("mug"), C("red", "cup", negated=True), C("ch", prefix=True, negated=True)],
        ),
        ("Crème BRÛLÉE", [C("creme"), C("brulee")]),
        ("c++ mug", [C("c"), C("mug")]),
        ("mug !!! mug", [C("mug")]),  # punctuation alone is nothing; a repeat is one clause
        ("AND OR NOT NEAR", [C("and"), C("or"), C("not"), C("near")]),
        ("ﬁsh", [C("fish")]),
    ],
)
def test_queries_parse_to_their_clauses(text: str, clauses: list[Clause]) -> None:
    query = parse_query(text)
    assert query is not None
    assert list(query.clauses) == clauses


@pytest.mark.parametrize("text", ["", "   ", "\t\n"])
def test_a_blank_query_is_no_full_text_condition(text: str) -> None:
    assert parse_query(text) is None


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('"blue mug', "not closed"),
        ('blue"mug', "must start"),
        ('"blue"mug', "space after"),
        ('""', "at least one word"),
        ('"!!"', "at least one word"),
        ("-mug", "exclusions alone"),
        ("- mug", "right before"),
        ("mu*g", "'*' may only end"),
        ("*", "must follow a word"),
        ("mug-*", "must follow a word"),
        ("m*", "at least 2 characters"),
        ("a " * 17, "at most 16"),
        ("x" * 257, "at most 256"),
    ],
)
def test_bad_queries_are_refused_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidQuery, match=re.escape(reason)) as caught:
        parse_query(text)
    assert caught.value.code == "invalid_search_query"
    assert caught.value.extra["field"] == "q"


def test_each_store_gets_its_own_syntax() -> None:
    query = parse_query('blue "red cup" mu* -cracked -"old mug"')
    assert query is not None
    assert to_fts5(query) == '("blue" AND "red cup" AND "mu"*) NOT "cracked" NOT "old mug"'
    assert to_tsquery(query) == (
        "(('blue') & ('red' <-> 'cup') & ('mu':*)) & !('cracked') & !('old' <-> 'mug')"
    )


@pytest.mark.parametrize(
    ("text", "document", "expected"),
    [
        ("blue mug", "a mug that is blue", True),
        ('"blue mug"', "a mug that is blue", False),
        ('"blue mug"', "the blue mug", True),
        ("mu*", "muffins", True),
        ("mu*", "a mu", True),
        ('"blue mu*"', "blue muffin", True),
        ('"blue mu*"', "muffin blue", False),
        ("mug -red", "red mug", False),
        ("mug -re*", "mug of tea", True),
        ("mug -re*", "mug, reheated", False),
        ("creme", "Crème brûlée", True),
    ],
)
def test_the_meaning_of_a_query(text: str, document: str, expected: bool) -> None:
    query = parse_query(text)
    assert query is not None
    assert matches(query, words(document)) is expected


@given(st.text(max_size=300))
def test_any_text_parses_or_is_refused_and_compiles_to_words_and_syntax_only(text: str) -> None:
    try:
        query = parse_query(text)
    except InvalidQuery:
        return
    if query is None:
        assert not text.strip()
        return
    assert isinstance(query, Query)
    assert any(not c.negated for c in query.clauses)
    for clause in query.clauses:
        assert all(w and all(ch.isalnum() for ch in w) for w in clause.words)
    # Without its quoted words, what is left is only the compilers' own syntax.
    fts, ts = to_fts5(query), to_tsquery(query)
    for quoted in re.findall(r'"([^"]*)"', fts) + re.findall(r"'([^']*)'", ts):
        assert all(w.isalnum() for w in quoted.split(" "))
    assert set(re.sub(r'"[^"]*"', "", fts)) <= set("() *ANDOT")
    assert set(re.sub(r"'[^']*'", "", ts)) <= set("() <->&!:*")

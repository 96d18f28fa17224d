"""Search queries: the user's text parsed into a small tree, compiled for each store.

Syntax (whitespace separates clauses; every clause must hold, in any order)::

    blue mug             both words
    "blue mug"           the phrase: the words next to each other, in order
    mug*                 a word starting with "mug" (at least 2 characters before *)
    "blue mu*"           a phrase whose last word is a prefix
    -cracked             not this word (or -"a phrase", -pre*)

A clause's words come from :func:`~._text.words`, so ``blue-mug`` is the
phrase ``"blue mug"`` and punctuation is ignored. The user's text never
reaches the database: :func:`parse_query` builds a :class:`Query` of words that
are runs of letters and digits only, and :func:`to_fts5` / :func:`to_tsquery`
write the store's own syntax from it (each passed as a bound parameter).
Anything else is :class:`InvalidQuery` (HTTP 400) with the reason:
an unterminated quote, a ``*`` that does not end a word, a query of
exclusions only, too many clauses or too long a text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..._exceptions import InvalidInput
from ._text import words

__all__ = (
    "MAX_CLAUSES",
    "MAX_QUERY_LENGTH",
    "Clause",
    "InvalidQuery",
    "Query",
    "matches",
    "parse_query",
    "to_fts5",
    "to_tsquery",
)

MAX_QUERY_LENGTH = 256
MAX_CLAUSES = 16
MIN_PREFIX = 2


class InvalidQuery(InvalidInput):
    """The search text is not a query this syntax accepts (see the module docstring)."""

    code = "invalid_search_query"


@dataclass(frozen=True, slots=True)
class Clause:
    """Consecutive ``words`` (one: a term); ``prefix``: the last is a prefix; ``negated``."""

    words: tuple[str, ...]
    prefix: bool = False
    negated: bool = False

    def holds(self, document: Sequence[str]) -> bool:
        """Whether ``document`` (its words in order) contains this clause (ignoring ``negated``)."""
        n = len(self.words)
        *head, last = self.words
        for i in range(len(document) - n + 1):
            if all(document[i + j] == w for j, w in enumerate(head)):
                word = document[i + n - 1]
                if word == last or (self.prefix and word.startswith(last)):
                    return True
        return False


@dataclass(frozen=True, slots=True)
class Query:
    """Clauses that must all hold (``negated`` ones must not); at least one positive."""

    clauses: tuple[Clause, ...]

    @property
    def positive(self) -> tuple[Clause, ...]:
        return tuple(c for c in self.clauses if not c.negated)

    def hit(self, word: str) -> bool:
        """Whether a document word is one the query looks for (what snippets highlight)."""
        return self.highlighter()(word)

    def highlighter(self) -> Callable[[str], bool]:
        """:meth:`hit` with the query's words gathered once (for many words)."""
        exact = frozenset(w for c in self.positive for w in c.words)
        prefixes = tuple(c.words[-1] for c in self.positive if c.prefix)
        return lambda word: word in exact or word.startswith(prefixes)


def _invalid(reason: str) -> InvalidQuery:
    return InvalidQuery(f"q: {reason}", field="q")


def _raw_clauses(text: str) -> list[tuple[str, bool, bool]]:
    """Split into (text, quoted, negated) on whitespace outside quotes."""
    out: list[tuple[str, bool, bool]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        negated = False
        if text[i] == "-":
            negated = True
            i += 1
            if i >= n or text[i].isspace():
                raise _invalid("'-' must come right before the word or phrase it excludes")
        if text[i] == '"':
            end = text.find('"', i + 1)
            if end < 0:
                raise _invalid("a quote is not closed")
            body = text[i + 1 : end]
            i = end + 1
            if i < n and text[i] == "*":  # "blue mu"* is "blue mu*"
                body += "*"
                i += 1
            if i < n and not text[i].isspace():
                raise _invalid("put a space after a closing quote")
            out.append((body, True, negated))
            continue
        start = i
        while i < n and not text[i].isspace() and text[i] != '"':
            i += 1
        if i < n and text[i] == '"':
            raise _invalid("a quote must start a word or phrase")
        out.append((text[start:i], False, negated))
    return out


def _clause(body: str, quoted: bool, negated: bool) -> Clause | None:
    prefix = body.endswith("*")
    core = body[:-1] if prefix else body
    if "*" in core:
        raise _invalid("'*' may only end the last word of a term or phrase")
    found = tuple(words(core))
    if not found:
        if quoted:
            raise _invalid("a phrase needs at least one word")
        if prefix:
            raise _invalid("'*' must follow a word")
        return None  # punctuation only: nothing to look for
    if prefix:
        # The * must touch a word: "mug *" is not a prefix of anything.
        if not core or not core[-1].isalnum():
            raise _invalid("'*' must follow a word")
        if len(found[-1]) < MIN_PREFIX:
            raise _invalid(f"a prefix needs at least {MIN_PREFIX} characters before '*'")
    return Clause(found, prefix, negated)


def parse_query(text: str) -> Query | None:
    """The query ``text`` means (``None`` for a blank text: no full-text condition)."""
    if len(text) > MAX_QUERY_LENGTH:
        raise _invalid(f"at most {MAX_QUERY_LENGTH} characters")
    if not text.strip():
        return None
    clauses = [
        clause
        for body, quoted, negated in _raw_clauses(text)
        if (clause := _clause(body, quoted, negated)) is not None
    ]
    if len(clauses) > MAX_CLAUSES:
        raise _invalid(f"at most {MAX_CLAUSES} words or phrases")
    unique = tuple(dict.fromkeys(clauses))
    if not any(not c.negated for c in unique):
        raise _invalid("search for at least one word (exclusions alone match nothing)")
    return Query(unique)


def matches(query: Query, document: Sequence[str]) -> bool:
    """The meaning of ``query`` on a document's words: what both stores compute."""
    return all(clause.holds(document) != clause.negated for clause in query.clauses)


# ---------------------------------------------------------------- compilers
# Words are runs of letters and digits (``words``): nothing in them is syntax
# to FTS5 (inside double quotes) or to to_tsquery (inside single quotes).


def _fts5_clause(clause: Clause) -> str:
    return f'"{" ".join(clause.words)}"' + ("*" if clause.prefix else "")


def to_fts5(query: Query) -> str:
    """The FTS5 ``MATCH`` expression of ``query``."""
    positive = " AND ".join(_fts5_clause(c) for c in query.positive)
    negative = "".join(f" NOT {_fts5_clause(c)}" for c in query.clauses if c.negated)
    return f"({positive}){negative}"


def _ts_clause(clause: Clause) -> str:
    parts = [f"'{w}'" for w in clause.words]
    if clause.prefix:
        parts[-1] += ":*"
    return "(" + " <-> ".join(parts) + ")"


def to_tsquery(query: Query) -> str:
    """The ``to_tsquery`` text of ``query``."""
    positive = " & ".join(_ts_clause(c) for c in query.positive)
    negative = "".join(f" & !{_ts_clause(c)}" for c in query.clauses if c.negated)
    return f"({positive}){negative}"

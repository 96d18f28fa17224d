"""Text as the index sees it: folding, words, markup stripped, and escaped snippets."""

from __future__ import annotations

import pytest

from triotok.modules.search import fold, plain_text, words
from triotok.modules.search._text import MAX_WORD, highlight, joined, snippet


def test_folding_removes_case_and_diacritics() -> None:
    assert fold("Crème BRÛLÉE") == "creme brulee"
    assert fold("Straße") == "strasse"
    assert fold("ﬁne Ⅻ") == "fine xii"


def test_words_are_runs_of_letters_and_digits() -> None:
    assert words("Blue-mug, 350 ml (snake_case) ÀÉÎ 東京") == [
        "blue",
        "mug",
        "350",
        "ml",
        "snake",
        "case",
        "aei",
        "東京",
    ]
    assert words("x" * (MAX_WORD + 1) + " ok") == ["ok"]
    assert words("a b c", limit=2) == ["a", "b"]
    assert joined(["Blue mug", "", "RED"]) == "blue mug red"


@pytest.mark.parametrize(
    ("body", "body_format", "text"),
    [
        ("# Title\n\n**bold** and _em_ `code`", "markdown", "Title bold and em code"),
        (
            "see [the docs](https://example.com/x) ![a cat](cat.png)",
            "markdown",
            "see the docs a cat",
        ),
        ("<https://example.com> kept", "markdown", "kept"),
        ("[ref]: https://example.com\ntext", "markdown", "text"),
        ("```python\nprint(1)\n```", "markdown", "print(1)"),
        ("<p>Hello&nbsp;<b>world</b></p><script>alert(1)</script>", "html", "Hello world"),
        ("<style>p{}</style><img alt='A cat' src=x>", "html", "A cat"),
        ("a &lt; b", "html", "a < b"),
        ("snake_case stays", "markdown", "snake_case stays"),
    ],
)
def test_markup_is_stripped(body: str, body_format: str, text: str) -> None:
    assert plain_text(body, body_format) == text


def _hit(word: str) -> bool:
    return word in {"mug", "creme"}


def test_highlights_escape_everything_but_the_marks() -> None:
    title = '<script>alert("x")</script> Blue MUG & crème'
    marked = highlight(title, _hit)
    assert "<script>" not in marked
    assert marked == (
        '&lt;script&gt;alert("x")&lt;/script&gt; Blue <mark>MUG</mark> &amp; <mark>crème</mark>'
    )


def test_a_snippet_is_a_window_around_the_first_hit() -> None:
    text = (
        " ".join(f"w{i}" for i in range(100)) + " the mug " + " ".join(f"v{i}" for i in range(100))
    )
    cut = snippet(text, _hit, length=10)
    assert cut.startswith("…")
    assert cut.endswith("…")
    assert "<mark>mug</mark>" in cut
    assert cut.count(" ") <= 11
    assert snippet("no hit here", _hit) == "no hit here"
    assert snippet("<b>", _hit) == "&lt;b&gt;"

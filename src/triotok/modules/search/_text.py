"""Text as the index sees it: markup stripped, folded, cut into words; and highlighted snippets.

One tokenizer for both backends. Words are runs of Unicode letters and
digits after folding (case folded, compatibility-decomposed, combining marks
removed: ``Crème BRÛLÉE`` is ``creme brulee``). The index stores the words
joined by single spaces, so SQLite FTS5 (``unicode61 remove_diacritics 2``)
and PostgreSQL (``to_tsvector``) both see exactly these words, and a word,
a phrase or a prefix matches the same documents on either store.

Invariants and reasons:

* :func:`words` is the only definition of a word; queries go through it too
  (``_query``), and the tests' naive search uses it as its model.
* A document is searchable in its first :data:`MAX_WORDS` words, and a word
  longer than :data:`MAX_WORD` characters is not indexed (PostgreSQL keeps at
  most 16,383 positions and refuses very long words; both stores cut at the
  same place).
* Snippets are made here from the original text, not by ``snippet()`` or
  ``ts_headline``: those would work on the folded text and differ between
  the stores. Everything but the ``<mark>`` tags is HTML-escaped.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable, Iterable
from html.parser import HTMLParser

__all__ = (
    "MAX_WORD",
    "MAX_WORDS",
    "fold",
    "highlight",
    "joined",
    "plain_text",
    "snippet",
    "words",
)

#: Longer words are not indexed (nor searchable).
MAX_WORD = 64
#: A document is searchable in its first this many words.
MAX_WORDS = 10_000

_WORD = re.compile(r"[^\W_]+")
_SNIPPET_WORDS = 24
_SNIPPET_BEFORE = 6


def fold(text: str) -> str:
    """``text`` case folded, compatibility-decomposed, without combining marks."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def words(text: str, limit: int = MAX_WORDS) -> list[str]:
    """The indexed words of ``text``, in order (at most ``limit``)."""
    found: list[str] = []
    # ASCII has no marks to remove and folds by lowercasing: the common case, fast.
    folded = text.lower() if text.isascii() else fold(text)
    for match in _WORD.finditer(folded):
        word = match.group()
        if len(word) <= MAX_WORD:
            found.append(word)
            if len(found) >= limit:
                break
    return found


# ---------------------------------------------------------------- markup


class _Text(HTMLParser):
    """Collects the text of an HTML fragment (script and style contents dropped)."""

    _SKIP = frozenset({"script", "style", "template"})
    _BREAKS = frozenset(
        {"p", "div", "br", "li", "tr", "td", "th", "h1", "h2", "h3", "h4", "h5", "h6"}
    )

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skipping += 1
        elif tag in self._BREAKS:
            self.parts.append(" ")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.parts.append(f" {alt} ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP and self._skipping:
            self._skipping -= 1
        elif tag in self._BREAKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def _html_text(markup: str) -> str:
    parser = _Text()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)


# Markdown constructs whose punctuation is not enough to hide what is not text.
_MD_IMAGE = re.compile(r"!\[([^\]]*)\]\([^)]*\)")
_MD_LINK = re.compile(r"\[([^\]]*)\]\([^)]*\)")
_MD_AUTOLINK = re.compile(r"<(?:https?|mailto|ftp):[^>\s]*>", re.IGNORECASE)
_MD_REFERENCE = re.compile(r"^\s{0,3}\[[^\]]+\]:\s*\S+.*$", re.MULTILINE)
_MD_FENCE = re.compile(r"^\s{0,3}(?:```|~~~).*$", re.MULTILINE)
# Emphasis, code, heading, quote and table marks (separators to words anyway).
_MD_MARKS = re.compile(r"[*`~#>|]+|(?<!\w)_+|_+(?!\w)")
_SPACES = re.compile(r"\s+")


def plain_text(body: str, body_format: str = "markdown") -> str:
    """``body`` without its markup (Markdown or HTML), whitespace collapsed.

    Markdown keeps the text of links and the alt text of images and loses
    their URLs, reference definitions and fence lines; HTML in either format
    keeps its text (``script``/``style`` contents dropped, entities decoded).
    Markdown's emphasis, code, heading and quote marks go too (they are
    punctuation, which words ignore anyway: only snippets see the difference).
    """
    text = body
    if body_format == "markdown":
        text = _MD_FENCE.sub(" ", text)
        text = _MD_REFERENCE.sub(" ", text)
        text = _MD_IMAGE.sub(r" \1 ", text)
        text = _MD_LINK.sub(r" \1 ", text)
        text = _MD_AUTOLINK.sub(" ", text)
    if "<" in text or "&" in text:
        text = _html_text(text)
    if body_format == "markdown":
        text = _MD_MARKS.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


# ---------------------------------------------------------------- snippets

WordTest = Callable[[str], bool]


def _hit_word(word: str, hit: WordTest) -> bool:
    if word.isascii():
        return hit(word.lower())
    return any(hit(w) for w in words(word))


def _marked(text: str, start: int, end: int, hit: WordTest) -> str:
    out: list[str] = []
    last = start
    for match in _WORD.finditer(text, start, end):
        out.append(html.escape(text[last : match.start()], quote=False))
        word = match.group()
        if _hit_word(word, hit):
            out.append(f"<mark>{html.escape(word, quote=False)}</mark>")
        else:
            out.append(html.escape(word, quote=False))
        last = match.end()
    out.append(html.escape(text[last:end], quote=False))
    return "".join(out)


def highlight(text: str, hit: WordTest) -> str:
    """All of ``text``, HTML-escaped, with the words ``hit`` accepts in ``<mark>``."""
    text = unicodedata.normalize("NFC", text)
    return _marked(text, 0, len(text), hit)


def snippet(text: str, hit: WordTest, *, length: int = _SNIPPET_WORDS) -> str:
    """About ``length`` words of ``text`` around its first hit, escaped, hits in ``<mark>``.

    Without a hit: the start of the text. An ellipsis marks each cut.
    """
    text = unicodedata.normalize("NFC", text)
    spans = [(m.start(), m.end(), m.group()) for m in _WORD.finditer(text)]
    if not spans:
        return html.escape(text[:200], quote=False)
    first = next((i for i, (_, _, word) in enumerate(spans) if _hit_word(word, hit)), 0)
    lo = max(0, first - _SNIPPET_BEFORE) if first else 0
    hi = min(len(spans), lo + length)
    lo = max(0, min(lo, hi - length))
    start = 0 if lo == 0 else spans[lo][0]
    end = len(text) if hi == len(spans) else spans[hi - 1][1]
    body = _marked(text, start, end, hit).strip()
    return ("…" if start > 0 else "") + body + ("…" if end < len(text) else "")


def joined(parts: Iterable[str]) -> str:
    """The words of ``parts`` as the index stores them: one space between words."""
    found: list[str] = []
    for part in parts:
        found += words(part, MAX_WORDS - len(found))
        if len(found) >= MAX_WORDS:
            break
    return " ".join(found)

"""What the seo plugin computes for one translation of a content node (pure functions).

* slug suggestions: the title folded to ASCII, lowercased, words joined by
  ``-``, at most 60 characters cut at a word boundary; then the same without
  stop words; the current slug is never suggested;
* a description: the excerpt, else the body's text (Markdown and HTML markup
  removed), its first sentences up to 160 characters, cut at a word;
* reading time: words / 200 per minute, rounded up, at least 1 minute.
"""

from __future__ import annotations

import html
import math
import re
import unicodedata
from dataclasses import dataclass

__all__ = ("Analysis", "analyse", "describe", "reading_minutes", "slugify")

WORDS_PER_MINUTE = 200
DESCRIPTION_LENGTH = 160
SLUG_LENGTH = 60

_STOP = frozenset(
    {
        *("a", "an", "and", "are", "as", "at", "be", "by", "for", "from", "has", "in", "is"),
        *("it", "its", "of", "on", "or", "that", "the", "to", "was", "were", "will", "with"),
        *("de", "la", "le", "les", "des", "du", "et", "un", "une", "der", "die", "das", "und"),
        *("ein", "eine", "el", "los", "las", "y"),
    }
)
_TAG = re.compile(r"<[^>]*>")
_MARKDOWN = re.compile(r"(!?\[([^\]]*)\]\([^)]*\))|[`*_#>~|]+")
_SPACE = re.compile(r"\s+")
_WORD = re.compile(r"[a-z0-9]+")


@dataclass(frozen=True, slots=True)
class Analysis:
    """The seo plugin's findings for one locale."""

    locale: str
    slugs: tuple[str, ...]
    description: str
    words: int
    reading_minutes: int

    def as_dict(self) -> dict[str, object]:
        return {
            "slugs": list(self.slugs),
            "description": self.description,
            "words": self.words,
            "reading_minutes": self.reading_minutes,
        }


def _ascii_words(text: str) -> list[str]:
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    return _WORD.findall(folded)


def _join(words: list[str]) -> str:
    slug = ""
    for word in words:
        candidate = f"{slug}-{word}" if slug else word
        if len(candidate) > SLUG_LENGTH:
            break
        slug = candidate
    return slug or (words[0][:SLUG_LENGTH] if words else "")


def slugify(title: str, *, drop_stop_words: bool = False) -> str:
    """``"The Café: déjà vu!"`` -> ``"the-cafe-deja-vu"``; without stop words ``"cafe-deja-vu"``."""
    words = _ascii_words(title)
    if drop_stop_words:
        words = [w for w in words if w not in _STOP] or words
    return _join(words)


def plain_text(body: str, body_format: str = "markdown") -> str:
    """The readable text of a body: tags (and Markdown markup) removed, entities decoded."""
    text = _TAG.sub(" ", body)
    if body_format == "markdown":
        text = _MARKDOWN.sub(lambda m: m.group(2) or " ", text)
    return _SPACE.sub(" ", html.unescape(text)).strip()


def describe(text: str) -> str:
    """Whole sentences up to 160 characters, else the first words with an ellipsis."""
    text = _SPACE.sub(" ", text).strip()
    if len(text) <= DESCRIPTION_LENGTH:
        return text
    sentences = re.split(r"(?<=[.!?])\s+", text)
    out = ""
    for sentence in sentences:
        candidate = f"{out} {sentence}".strip()
        if len(candidate) > DESCRIPTION_LENGTH:
            break
        out = candidate
    if out:
        return out
    cut = text[: DESCRIPTION_LENGTH - 1].rsplit(" ", 1)[0].rstrip(",;:")
    return cut + "…"


def reading_minutes(words: int) -> int:
    return max(1, math.ceil(words / WORDS_PER_MINUTE))


def analyse(
    locale: str, title: str, slug: str, excerpt: str, body: str, body_format: str
) -> Analysis:
    """The findings for one translation (see the module docstring)."""
    text = plain_text(body, body_format)
    words = len(text.split())
    suggestions: list[str] = []
    for candidate in (slugify(title), slugify(title, drop_stop_words=True)):
        if candidate and candidate != slug and candidate not in suggestions:
            suggestions.append(candidate)
    description = describe(plain_text(excerpt, body_format) if excerpt.strip() else text)
    return Analysis(locale, tuple(suggestions), description, words, reading_minutes(words))

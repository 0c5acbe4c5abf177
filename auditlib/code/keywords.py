"""Identifier words and keyword phrases: how profiles (features, test scenarios) name
things without regular expressions.

``split_words("listLeads_by_status")`` gives ``["list", "leads", "by", "status"]``. A
keyword phrase matches a set of words when every word of the phrase is present; a phrase
word matches its plural too (``lead`` matches ``leads``), and a trailing ``*`` makes it a
prefix (``estimat*`` matches ``estimate`` and ``estimation``).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z]|\d|\b|_)|[A-Z]?[a-z]+|[A-Z]+|\d+")


def split_words(text: str) -> list[str]:
    """Lower-case words of identifiers, paths or prose (snake_case, camelCase, kebab)."""
    return [w.lower() for w in _WORD.findall(text or "")]


def word_match(kw: str, words: set[str]) -> bool:
    if kw.endswith("*"):
        stem = kw[:-1]
        return any(w.startswith(stem) for w in words)
    return kw in words or f"{kw}s" in words or f"{kw}es" in words


@lru_cache(maxsize=None)
def _phrase_words(phrase: str) -> tuple[str, ...]:
    """A phrase's lower-case words, split once (profiles are matched against thousands of names)."""
    return tuple(phrase.lower().split())


def phrase_match(phrase: str, words: set[str]) -> bool:
    parts = _phrase_words(phrase)
    return bool(parts) and all(word_match(p, words) for p in parts)


def mentions_any(text: str, words: Iterable[str]) -> bool:
    """Whether ``text`` contains one of ``words``, case-insensitively (what a regex of the
    escaped words with ``re.IGNORECASE`` finds). On ASCII text and words, case folding is
    ASCII's, so it is a substring test of the lower-cased text: some ten times faster than
    a case-insensitive regex, which gets no literal prefix scan."""
    words = tuple(words)
    if text.isascii() and all(w.isascii() for w in words):
        low = text.lower()
        return any(w.lower() in low for w in words)
    return bool(_any_word(words).search(text))


@lru_cache(maxsize=256)
def _any_word(words: tuple[str, ...]) -> re.Pattern:
    return re.compile("|".join(map(re.escape, words)), re.IGNORECASE)


def first_phrase(phrases: Iterable[str], words: set[str]) -> str | None:
    """The first phrase of ``phrases`` that matches ``words``, or None."""
    return next((p for p in phrases if phrase_match(p, words)), None)

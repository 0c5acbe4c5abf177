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
def _phrase_parts(phrase: str) -> tuple[tuple[str, tuple[str, ...] | None], ...]:
    """A phrase's words, each as (prefix stem, None) for ``word*`` or ('', the word and
    its plurals); profiles are matched against thousands of names, so split once."""
    return tuple((p[:-1], None) if p.endswith("*") else ("", (p, f"{p}s", f"{p}es"))
                 for p in phrase.lower().split())


def phrase_match(phrase: str, words: set[str]) -> bool:
    parts = _phrase_parts(phrase)
    if not parts:
        return False
    if not isinstance(words, (set, frozenset)):
        words = set(words)
    for stem, forms in parts:
        if forms is None:
            if not any(w.startswith(stem) for w in words):
                return False
        elif words.isdisjoint(forms):
            return False
    return True


def first_phrase(phrases: Iterable[str], words: set[str]) -> str | None:
    """The first phrase of ``phrases`` that matches ``words``, or None."""
    return next((p for p in phrases if phrase_match(p, words)), None)

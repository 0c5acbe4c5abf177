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

_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z]|\d|\b|_)|[A-Z]?[a-z]+|[A-Z]+|\d+")


def split_words(text: str) -> list[str]:
    """Lower-case words of identifiers, paths or prose (snake_case, camelCase, kebab)."""
    return [w.lower() for w in _WORD.findall(text or "")]


def word_match(kw: str, words: set[str]) -> bool:
    if kw.endswith("*"):
        stem = kw[:-1]
        return any(w.startswith(stem) for w in words)
    return kw in words or f"{kw}s" in words or f"{kw}es" in words


def phrase_match(phrase: str, words: set[str]) -> bool:
    parts = phrase.lower().split()
    return bool(parts) and all(word_match(p, words) for p in parts)


def first_phrase(phrases: Iterable[str], words: set[str]) -> str | None:
    """The first phrase of ``phrases`` that matches ``words``, or None."""
    return next((p for p in phrases if phrase_match(p, words)), None)

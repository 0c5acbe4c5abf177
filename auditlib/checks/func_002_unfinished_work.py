"""FUNC-002: unfinished work markers (TODO, FIXME, XXX, HACK) in application code."""
from __future__ import annotations

import re

from ..findings import Location, Severity
from ..code.pyast import comments
from ..redact import redact_text
from . import check

WORDS = ("TODO", "FIXME", "XXX", "HACK")
# folders of third-party code copied into the project: their markers are upstream's notes
VENDORED = {"vendor", "_vendor", "vendored", "_vendored", "third_party", "_third_party", "thirdparty"}
MARKER = re.compile(r"\b(" + "|".join(WORDS) + r")\b")
# words by which a comment admits a defect (identifiers such as `ProvisioningError` are not words).
# Not defects by themselves: "hack", "dirty", "workaround" (a shortcut that works), "error(s)",
# "exception(s)", "handle" (a note on which errors to catch or report), a bare "lock" (a
# remark about locking): their notes are RECOMMENDATIONs unless another word names a defect.
DEFECT = {"bug", "bugs", "buggy", "race", "races", "racy", "wrong", "wrongly", "incorrect", "incorrectly", "broken",
          "leak", "leaks", "crash", "crashes", "unsafe", "insecure", "security", "vulnerable",
          "deadlock", "deadlocks", "corrupt", "corrupted", "corrupts", "dangling", "fail",
          "fails", "failing", "unhandled", "overflow",
          "unbound", "unbounded", "problem", "problems", "lost", "loses", "duplicate", "duplicates",
          "inconsistent", "stale", "blocking", "breaks", "cannot"}
DEFECT_PHRASE = re.compile(r"off[- ]by[- ]one|thread[- ]safe|data loss|"
                           r"(does not|doesn't|not) work|too (early|late|soon)|"
                           r"not under (a |the )?lock|without (a |the |any )?lock(ing)?|"
                           r"not (handled|checked|validated|escaped|rejected|enforced|prevented|retried|locked)", re.I)
# a shortcut the authors took on purpose: it works, nothing is named as broken
SHORTCUT = re.compile(r"\bhack(s|y|ish)?\b|quick[- ]and[- ]dirty|\bkludge\b|\bworkaround\b|\bwork around\b", re.I)
# the authors judged the defect acceptable for now: "if this becomes a problem, consider ...",
# "not urgent", "rare operation" (the note is a RECOMMENDATION, whatever words it uses)
DEFERRED = re.compile(r"\bif (this|it) (ever )?(becomes|turns into|turns out to be|is ever) an? "
                      r"(problem|issue|bottleneck|concern)|\bnot urgent\b|\brare (operation|case)\b|"
                      r"\bgood enough\b", re.I)


def _note_key(first: str, body: list[str]) -> str:
    """What makes two notes the same note: the marker line itself when it says something
    on its own (four words or more after the marker: "FIXME: potentially long write
    transaction" above three different statements is one remark made three times), else
    the whole comment with its continuation lines (a bare "TODO" or "TODO: fix" says
    nothing by itself)."""
    if len(re.findall(r"\w+", body[0])) >= 4:
        return re.sub(r"\s+", " ", first).strip().lower()
    return re.sub(r"\s+", " ", " ".join(body)).strip().lower()


@check("FUNC-002", "functional", "Unfinished work in application code")
def unfinished_work(ctx):
    """``# TODO`` / ``FIXME`` / ``XXX`` / ``HACK`` comments in application code.

    Why: each marks behaviour the authors knew to be incomplete or wrong; before a
    release an auditor wants the list, with locations.
    Severity: a FIXME / XXX / HACK whose comment (with its continuation lines) admits a
    defect in words (a race, a bug, an unhandled error, a leak, a duplicate, "wrong",
    "incorrect", "not locked", "released too early"...) is a WARNING. RECOMMENDATION:
    TODO (planned work); FIXME / XXX notes that name no defect (a remark on which errors
    to catch or handle, "catch only no-capacity errors", "handle image errors"; a design
    or typing note); a defect the authors say is acceptable for now ("if this becomes a
    problem, consider...", "not urgent", "rare operation"). INFO: a note that only names
    a shortcut taken on purpose ("hack", "quick-and-dirty", a workaround, the HACK marker)
    or a deferral without a defect: there is nothing to fix before release. The same note at
    several places (a comment copied beside each import) is one finding with every
    location: the same marker line when it says something on its own (four words or more
    after the marker, whatever continuation lines follow it), else the same whole comment;
    notes of different severities stay apart.
    Not flagged: markers in tests and migrations, in vendored third-party code (a
    ``vendor`` / ``_vendor`` / ``vendored`` / ``third_party`` folder: upstream's notes, e.g.
    the stdlib's "HACK: hand-optimized bytecode"), lower-case words, and words inside
    string literals (only real comments, found with ``tokenize``, count). Stubs are not
    comments and never flagged here: abstract methods, ``Protocol`` bodies and
    ``raise NotImplementedError`` in a base class or an unsupported branch are
    deliberate, not unfinished work.
    """
    chk = unfinished_work.check
    seen: dict[tuple, object] = {}
    out = []
    for src in ctx.layout.app_sources(ctx.index):
        if any(part.lower() in VENDORED for part in src.path.split("/")[:-1]):
            continue  # vendored third-party code: not the authors' unfinished work
        text = src.text
        if text is None or not any(w in text for w in WORDS) or not MARKER.search(text):
            continue  # no marker anywhere in the file, so none in a comment: skip tokenizing
        lines = list(comments(src))
        for i, (line, text) in enumerate(lines):
            m = MARKER.search(text)
            if not m:
                continue
            word = m.group(1)
            body = [text[m.end():]]
            for nxt, more in lines[i + 1:]:  # the comment's continuation lines
                if nxt != line + len(body) or MARKER.search(more):
                    break
                body.append(more)
            said = " ".join(body)
            admits = sorted({w.lower() for w in re.findall(r"\b[A-Za-z][a-z]*\b", said)} & DEFECT)
            admits += [m.group(0).lower() for m in DEFECT_PHRASE.finditer(said)][:1]
            deferred = DEFERRED.search(said)
            defect = word != "TODO" and bool(admits) and not deferred
            shortcut = word == "HACK" or bool(SHORTCUT.search(said))
            if defect:
                sev, what = Severity.WARNING, "admits a known defect" + (f" ({', '.join(admits[:3])})" if admits else "")
            elif word == "TODO":
                sev, what = Severity.RECOMMENDATION, "marks work the authors knew to be unfinished"
            elif deferred:
                sev = Severity.RECOMMENDATION if admits else Severity.INFO
                what = f"notes a limitation the authors chose to live with for now (\"{deferred.group(0)}\")"
            elif shortcut:
                sev, what = Severity.INFO, "notes a shortcut the authors took on purpose (a hack, a workaround) and names no defect"
            else:
                sev, what = Severity.RECOMMENDATION, "flags code the authors meant to revisit (it names no defect)"
            key = (word, sev, _note_key(text, body))
            if key[2] and key in seen:  # the same note copied elsewhere: one finding
                f = seen[key]
                f.locations.append(Location(src.path, line, line, redact_text(src.line(line))[:300]))
                continue
            f = chk.finding(
                ctx, sev, f"{word} left in application code",
                f"A {word} comment {what}; it ships to production as is.",
                f"Finish the work described by the {word} or track it in the issue tracker "
                "and remove the marker.",
                src.path, line)
            seen[key] = f
            out.append(f)
    yield from out

"""``report.html``: the executed notebooks stitched into one self-contained page.

Pipeline: :func:`build_report_notebook` merges the executed notebooks (summary first) into
one nbformat notebook with a generated header, a generated table of contents and one
``<h2 id=...>`` per section; :func:`export_html` renders it with nbconvert's ``lab``
template, inputs hidden, images embedded, and no network fetches when opened offline.

Security: every piece of target-supplied text placed into a *generated* cell (titles,
excerpts, file names, errors) is ``html.escape``d. nbconvert renders markdown cells with
mistune, which passes raw HTML through, so escaping is not optional. Generated markdown
cells are single HTML blocks (no blank lines, whitespace folded) so that mistune does not
switch back to Markdown halfway; tables go into ``display_data`` outputs.

Offline: nbconvert 7.17's ``lab`` template emits ``<script src=...>`` for require.js and
MathJax (cdnjs) in ``<head>``, an inline module that ``import()``s mermaid from cdnjs, and
unpkg widget loaders when the notebook has widget state. There is no ``include_mathjax``
/ ``disable_mathjax`` trait, and setting ``mathjax_url``/``require_js_url`` to "" still
leaves an empty ``<script src="">``. So we *configure* a tiny child template (via
``extra_loaders`` + ``template_file``) that empties those blocks, also blank the URL
traits, add a Content-Security-Policy ``<meta>`` that forbids any network load
(``default-src 'none'``; inline styles and ``data:`` images/fonts only) and, as a last
resort, strip external ``<script src>``/``<link href>`` tags that notebook *outputs* may
carry (logged).
"""
from __future__ import annotations

import copy
import html as _html
import logging
import re
from dataclasses import dataclass

import nbformat
from nbformat import NotebookNode

from auditlib.findings import SEVERITIES, counts

from . import common as c
from .model import NotebookResult, RunResult

log = logging.getLogger(__name__)

ANCHOR_PREFIX = "auditlib-"
DROP_TAGS = {"parameters", "injected-parameters", "papermill-error-cell-tag"}
# Outputs that need JavaScript (blocked by our CSP) or a CDN: dropped, text/plain kept.
DROP_MIMETYPES = {
    "application/vnd.jupyter.widget-view+json",
    "application/vnd.jupyter.widget-state+json",
    "application/javascript",
}

CSP = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:; "
       "base-uri 'none'; form-action 'none'")

_CSS = """
.auditlib-header table, .auditlib-table { border-collapse: collapse; margin: 0.5em 0; }
.auditlib-header td, .auditlib-header th, .auditlib-table td, .auditlib-table th {
  border: 1px solid #ccc; padding: 2px 8px; text-align: left; vertical-align: top; }
.auditlib-table pre { margin: 0; white-space: pre-wrap; }
.auditlib-sev-BLOCKER { color: #b00020; font-weight: bold; }
.auditlib-sev-WARNING { color: #a05a00; font-weight: bold; }
.auditlib-failed { border-left: 4px solid #b00020; padding: 0.3em 0.8em; background: #fff0f0; }
"""

_TEMPLATE_NAME = "auditlib_report.html.j2"
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{#- auditlib: no network fetches. Empties the CDN blocks of nbconvert's lab template. -#}
{%- block html_head -%}
<meta http-equiv="Content-Security-Policy" content="__CSP__">
{{ super() }}
{%- endblock html_head -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block extra_css -%}
<style type="text/css">__CSS__</style>
{%- endblock extra_css -%}
""".replace("__CSP__", CSP).replace("__CSS__", _CSS)

_EXTERNAL_TAG_RES = [
    re.compile(r"""<script\b[^>]*\bsrc\s*=\s*["']?\s*(?:https?:)?//[^>]*>.*?</script\s*>""",
               re.I | re.S),
    re.compile(r"""<link\b[^>]*\bhref\s*=\s*["']?\s*(?:https?:)?//[^>]*>""", re.I),
]


# --------------------------------------------------------------------------- helpers
def esc(s) -> str:
    """Escape for HTML text/attributes."""
    return _html.escape("" if s is None else str(s), quote=True)


def esc1(s) -> str:
    """Escape and fold whitespace: safe inside a one-block markdown cell."""
    return esc(" ".join(("" if s is None else str(s)).split()))


def slug(s: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", (s or "").lower()).strip("-") or "section"


@dataclass
class Section:
    anchor: str
    title: str
    failed: bool = False
    error: str = ""
    nb_result: NotebookResult | None = None


def _md(source: str, cid: str) -> NotebookNode:
    cell = nbformat.v4.new_markdown_cell(source)
    cell.id = cid
    return cell


def _html_cell(html_text: str, plain: str, cid: str) -> NotebookNode:
    cell = nbformat.v4.new_code_cell("")
    cell.id = cid
    cell.metadata["tags"] = ["auditlib-generated"]
    cell.outputs = [nbformat.v4.new_output(
        "display_data", data={"text/html": html_text, "text/plain": plain})]
    return cell


def _load(nbr: NotebookResult) -> tuple[list[NotebookNode], str]:
    """(cells, error) of one executed notebook; error is "" when the section is fine."""
    error = ""
    if nbr.status != "ok":
        error = nbr.error or f"notebook status: {nbr.status}"
    if nbr.path is None:
        return [], error or "the notebook was not produced"
    try:
        src = nbformat.read(str(nbr.path), as_version=4)
    except Exception as exc:  # unreadable/missing/corrupt: the report still gets built
        msg = f"the executed notebook could not be read: {type(exc).__name__}: {exc}"
        return [], f"{error}; {msg}" if error else msg
    return list(src.cells), error


def _clean_cell(cell: NotebookNode, cid: str) -> NotebookNode | None:
    tags = set(cell.get("metadata", {}).get("tags", []) or [])
    if tags & DROP_TAGS:
        return None
    cell = copy.deepcopy(cell)
    cell.id = cid
    if cell.cell_type == "code":
        outs = []
        for out in cell.get("outputs", []):
            if "data" in out:
                for mt in DROP_MIMETYPES & set(out["data"]):
                    del out["data"][mt]
                if not out["data"]:
                    continue
            outs.append(out)
        cell.outputs = outs
    return cell


def _notebook_order(run: RunResult) -> list[NotebookResult]:
    return sorted(run.notebooks, key=lambda nb: nb.area != "summary")  # stable: summary first


# --------------------------------------------------------------------------- generated HTML
def findings_table_html(findings) -> str:
    if not findings:
        return "<p>No findings.</p>"
    rows = []
    for f in findings:
        locs = "<br>".join(esc(c.loc_str(loc)) for loc in f.locations)
        extra = [esc(c.route_str(r)) for r in f.routes] + [esc(t) for t in f.tables] + \
                [esc(s) for s in f.settings]
        if extra:
            locs += ("<br>" if locs else "") + "<br>".join(extra)
        excerpt = next((loc.excerpt for loc in f.locations if loc.excerpt), "")
        title = f"<strong>{esc(f.title)}</strong><br>{esc(f.message)}"
        if excerpt:
            title += f"<pre>{esc(excerpt)}</pre>"
        sev = esc(f.severity.value)
        rows.append(
            f'<tr><td class="auditlib-sev-{sev}">{sev}</td><td>{esc(f.check)}</td>'
            f"<td>{title}</td><td>{locs}</td><td>{esc(f.fix)}</td>"
            f"<td><code>{esc(f.fingerprint)}</code></td></tr>")
    return ('<table class="auditlib-table"><thead><tr><th>Severity</th><th>Check</th>'
            "<th>Finding</th><th>Evidence</th><th>Fix</th><th>Fingerprint</th></tr></thead>"
            "<tbody>" + "".join(rows) + "</tbody></table>")


def stages_table_html(run: RunResult) -> str:
    if not run.stages:
        return "<p>No stages recorded.</p>"
    rows = "".join(f"<tr><td>{esc(k)}</td><td>{esc(v)}</td></tr>" for k, v in run.stages.items())
    nbs = "".join(
        f"<tr><td>{esc(nb.title)}</td><td>{esc(nb.status)}</td><td>{nb.duration:.1f}s</td>"
        f"<td>{esc(nb.error)}</td></tr>" for nb in _notebook_order(run))
    return ('<table class="auditlib-table"><thead><tr><th>Stage</th><th>Status</th></tr>'
            f"</thead><tbody>{rows}</tbody></table>"
            '<table class="auditlib-table"><thead><tr><th>Notebook</th><th>Status</th>'
            f"<th>Duration</th><th>Error</th></tr></thead><tbody>{nbs}</tbody></table>")


def header_html(run: RunResult) -> str:
    n = counts(run.findings)
    v = c.verdict_of(run)
    reasons = c.incomplete_reasons(run)
    status = "COMPLETE" if not reasons else "INCOMPLETE — " + "; ".join(reasons)
    cells = "".join(f"<th>{s}</th>" for s in SEVERITIES)
    vals = "".join(f"<td>{n[s]}</td>" for s in SEVERITIES)
    return (
        '<div class="auditlib-header">'
        '<h1 id="auditlib-top">Production Readiness Audit Report</h1>'
        f"<p><strong>Application:</strong> {esc1(run.target_name)}<br>"
        f"<strong>Audit Date:</strong> {esc1(run.started.date().isoformat())}<br>"
        f"<strong>Auditor:</strong> auditlib {esc1(run.tool_version)}"
        + (f"<br><strong>Commit:</strong> <code>{esc1(run.commit)}</code>" if run.commit else "")
        + "</p>"
        f'<h2 id="auditlib-verdict">Verdict: {esc1(c.verdict_label(v))}</h2>'
        f"<table><thead><tr>{cells}</tr></thead><tbody><tr>{vals}</tr></tbody></table>"
        f"<p><strong>Review Status:</strong> {esc1(status)}</p>"
        "</div>")


def toc_html(sections: list[Section]) -> str:
    items = "".join(
        f'<li><a href="#{esc(s.anchor)}">{esc1(s.title)}</a>'
        + (" <em>(failed)</em>" if s.failed else "") + "</li>" for s in sections)
    return (f'<nav class="auditlib-toc" id="{ANCHOR_PREFIX}toc">'
            f"<h2 id=\"{ANCHOR_PREFIX}contents\">Contents</h2><ol>{items}</ol></nav>")


# --------------------------------------------------------------------------- stitching
def build_report_notebook(run: RunResult) -> NotebookNode:
    """One notebook: header, TOC, one section per executed notebook, findings, stages."""
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"title": f"Production readiness audit — {run.target_name}",
                   "auditlib": {"target": run.target_name, "version": run.tool_version,
                                "verdict": c.verdict_of(run).value}}
    sections: list[Section] = []
    loaded: list[list[NotebookNode]] = []
    for i, nbr in enumerate(_notebook_order(run), start=1):
        cells, error = _load(nbr)
        sections.append(Section(f"{ANCHOR_PREFIX}sec-{i:02d}-{slug(nbr.area)}",
                                nbr.title or nbr.area, bool(error), error, nbr))
        loaded.append(cells)
    extra = [Section(f"{ANCHOR_PREFIX}all-findings", "All findings"),
             Section(f"{ANCHOR_PREFIX}stages", "Audit stages and notebooks")]

    nb.cells.append(_md(header_html(run), "auditlib-header"))
    nb.cells.append(_md(toc_html(sections + extra), "auditlib-toc"))
    for si, (sec, cells) in enumerate(zip(sections, loaded), start=1):
        nb.cells.append(_md(f'<h2 id="{esc(sec.anchor)}">{esc1(sec.title)}</h2>', f"s{si:02d}-head"))
        if sec.failed:
            nb.cells.append(_md(
                f'<div class="auditlib-failed"><p><strong>This section failed:</strong> '
                f"{esc1(sec.error)}</p></div>", f"s{si:02d}-failed"))
        k = 0
        for ci, cell in enumerate(cells):
            if ci == 0 and cell.cell_type == "markdown" and cell.source.startswith("# "):
                # the notebook's own title: the section heading above replaces it
                cell = nbformat.from_dict({**cell, "source": cell.source.split("\n", 1)[1]
                                           if "\n" in cell.source else ""})
            new = _clean_cell(cell, f"s{si:02d}-c{k:04d}")
            if new is not None:
                nb.cells.append(new)
                k += 1
    fs = c.sorted_findings(run.findings)
    nb.cells.append(_md(f'<h2 id="{extra[0].anchor}">{esc(extra[0].title)}</h2>', "findings-head"))
    nb.cells.append(_html_cell(findings_table_html(fs), f"{len(fs)} findings", "findings-table"))
    nb.cells.append(_md(f'<h2 id="{extra[1].anchor}">{esc(extra[1].title)}</h2>', "stages-head"))
    nb.cells.append(_html_cell(stages_table_html(run), "stages", "stages-table"))

    ids = [cell.id for cell in nb.cells]
    assert len(ids) == len(set(ids)), "duplicate cell ids in the stitched notebook"
    return nb


# --------------------------------------------------------------------------- export
def _exporter():
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    return HTMLExporter(
        template_name="lab",
        extra_loaders=[DictLoader({_TEMPLATE_NAME: _TEMPLATE})],
        template_file=_TEMPLATE_NAME,
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
        embed_images=True,
        # Belt and braces: nothing to fetch even if a block above were not overridden.
        require_js_url="",
        mathjax_url="",
        mermaid_js_url="",
        mermaid_layout_elk_js_url="",
        jquery_url="",
        jupyter_widgets_base_url="",
        widget_renderer_url="",
    )


def strip_external(html_text: str) -> tuple[str, int]:
    """Last resort: drop ``<script src=http...>`` / ``<link href=http...>`` from outputs."""
    total = 0
    for rx in _EXTERNAL_TAG_RES:
        html_text, n = rx.subn("<!-- auditlib: external resource removed -->", html_text)
        total += n
    return html_text, total


_HEADING_RE = re.compile(
    r'<h([1-6]) id="([^"]*)">(.*?)<a class="anchor-link" href="#\2">', re.S)
_ID_RE = re.compile(r'\bid="([^"]*)"')


def dedupe_heading_ids(html_text: str) -> tuple[str, int]:
    """Make nbconvert's auto heading ids unique across the stitched notebooks.

    nbconvert derives ``<hN id=...>`` from the heading text, so two notebooks that both
    have a "## Findings" heading would produce duplicate ids. Our own anchors are unique
    by construction; this renames later duplicates (and their anchor link) to ``X-2``...
    """
    all_ids = set(_ID_RE.findall(html_text))
    seen: set[str] = set()
    renamed = 0

    def fix(m: re.Match) -> str:
        nonlocal renamed
        level, hid, inner = m.groups()
        new = hid
        if hid in seen:
            k = 2
            while f"{hid}-{k}" in all_ids or f"{hid}-{k}" in seen:
                k += 1
            new = f"{hid}-{k}"
            renamed += 1
        seen.add(new)
        return f'<h{level} id="{new}">{inner}<a class="anchor-link" href="#{new}">'

    return _HEADING_RE.sub(fix, html_text), renamed


def export_html(nb: NotebookNode) -> str:
    body, _ = _exporter().from_notebook_node(nb, resources={"metadata": {"name": "report"}})
    body, _ = dedupe_heading_ids(body)
    body, n = strip_external(body)
    if n:
        log.warning("report.html: removed %d external script/link tag(s) from notebook outputs", n)
    return body


def minimal_html(run: RunResult, error: str) -> str:
    """Fallback page when the notebook export fails: verdict, counts, findings, error."""
    fs = c.sorted_findings(run.findings)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f"<title>Production readiness audit — {esc1(run.target_name)}</title>"
        f'<style type="text/css">{_CSS}</style></head><body>'
        f"{header_html(run)}"
        '<div class="auditlib-failed"><p><strong>The full HTML report could not be built:'
        f"</strong> {esc1(error)}</p><p>See report.md and findings.json.</p></div>"
        f"<h2>All findings</h2>{findings_table_html(fs)}"
        f"<h2>Audit stages and notebooks</h2>{stages_table_html(run)}"
        "</body></html>\n")

"""``report.html``: a front page for the decision, every finding with its evidence, and the
executed notebooks (the workbook) as the appendix.

Layout (:func:`front_html`): the verdict banner and the Review Status, the critical
statistics of the report template, the stages (what ran, what failed and why), then the
blockers (each with its evidence: file:line, excerpt, routes; why it matters; how to fix),
the warnings grouped by area, and the recommendations and information collapsed. Every
finding carries ``id="f-<fingerprint>"`` so a link can point at it, and ``data-sev`` /
``data-area`` / ``data-check`` for the filter. Then the appendix: :func:`build_report_notebook`
merges the executed notebooks (summary first) into one nbformat notebook, one ``<h2 id=...>``
per section, and :func:`export_html` renders it with nbconvert's ``lab`` template (inputs
hidden, images embedded), our page placed around it by a child template.

Security: every piece of target-supplied text placed into generated HTML (titles,
excerpts, file names, errors, routes) is ``html.escape``d. nbconvert renders markdown
cells with mistune, which passes raw HTML through, so escaping is not optional. Generated
markdown cells are single HTML blocks (no blank lines, whitespace folded) so that mistune
does not switch back to Markdown halfway. The only script is ours (:data:`SCRIPT`, inline,
allowed by its SHA-256 in the Content-Security-Policy): nothing else can run, not even an
``onerror=`` attribute that escaping had missed.

Offline: nbconvert 7.17's ``lab`` template emits ``<script src=...>`` for require.js and
MathJax (cdnjs) in ``<head>``, an inline module that ``import()``s mermaid from cdnjs, and
unpkg widget loaders when the notebook has widget state. There is no ``include_mathjax``
/ ``disable_mathjax`` trait, and setting ``mathjax_url``/``require_js_url`` to "" still
leaves an empty ``<script src="">``. So we *configure* a tiny child template (via
``extra_loaders`` + ``template_file``) that empties those blocks, also blank the URL
traits, add a Content-Security-Policy ``<meta>`` that forbids any network load
(``default-src 'none'``; inline styles, ``data:`` images/fonts and our hashed script only)
and, as a last resort, strip external ``<script src>``/``<link href>`` tags that notebook
*outputs* may carry (logged).
"""
from __future__ import annotations

import base64
import copy
import hashlib
import html as _html
import logging
import re
from dataclasses import dataclass

import nbformat
from nbformat import NotebookNode

from auditlib.findings import AREAS, SEVERITIES, Finding, Severity, counts

from . import common as c
from .model import NotebookResult, RunResult, stage_ran

log = logging.getLogger(__name__)

ANCHOR_PREFIX = "auditlib-"
DROP_TAGS = {"parameters", "injected-parameters", "papermill-error-cell-tag"}
# Outputs that need JavaScript (blocked by our CSP) or a CDN: dropped, text/plain kept.
DROP_MIMETYPES = {
    "application/vnd.jupyter.widget-view+json",
    "application/vnd.jupyter.widget-state+json",
    "application/javascript",
}
# A table with more rows than this is collapsed (<details>, with its row count).
COLLAPSE_ROWS = 20
# Per finding: locations and routes shown before the rest is collapsed.
SHOW_LOCATIONS = 5
SHOW_ROUTES = 12
# An area with more warnings than this starts collapsed on the front page.
COLLAPSE_GROUP = 15

# The page's only script: the filter, opening the <details> that hold a linked finding,
# and every <details> opened while printing. No network, no eval, no innerHTML.
SCRIPT = r"""
(function () {
  "use strict";
  var $ = function (id) { return document.getElementById(id); };
  var all = function (sel, root) { return Array.prototype.slice.call((root || document).querySelectorAll(sel)); };
  var items = all(".al-finding");
  var sev = $("al-filter-sev"), area = $("al-filter-area"), check = $("al-filter-check");
  var status = $("al-filter-status"), reset = $("al-filter-reset");
  function apply() {
    var s = sev.value, a = area.value, k = check.value, shown = 0, filtered = !!(s || a || k);
    items.forEach(function (el) {
      var ok = (!s || el.getAttribute("data-sev") === s) && (!a || el.getAttribute("data-area") === a) &&
               (!k || el.getAttribute("data-check") === k);
      el.hidden = !ok;
      if (ok) { shown += 1; }
    });
    all("[data-al-group]").forEach(function (g) {
      var n = all(".al-finding", g).filter(function (el) { return !el.hidden; }).length;
      g.hidden = n === 0;
      var cnt = g.querySelector("[data-al-count]");
      if (cnt) { cnt.textContent = String(n); }
      if (filtered && g.tagName === "DETAILS" && n > 0) { g.open = true; }
    });
    all("[data-al-count-of]").forEach(function (cnt) {
      var list = $(cnt.getAttribute("data-al-count-of"));
      var shown = list ? all(".al-finding", list).filter(function (el) { return !el.hidden; }).length : 0;
      cnt.textContent = String(shown);
    });
    status.textContent = filtered ? "Showing " + shown + " of " + items.length + " findings"
                                  : "All " + items.length + " findings";
    document.body.classList.toggle("al-filtered", filtered);
  }
  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id ? $(id) : null;
    if (!el) { return; }
    for (var p = el; p; p = p.parentElement) {
      if (p.tagName === "DETAILS") { p.open = true; }
      if (p.hidden) { p.hidden = false; }
    }
    el.scrollIntoView();
  }
  if (sev && area && check && status) {
    [sev, area, check].forEach(function (sel) { sel.addEventListener("change", apply); });
    if (reset) {
      reset.addEventListener("click", function () { sev.value = ""; area.value = ""; check.value = ""; apply(); });
    }
    apply();
  }
  window.addEventListener("hashchange", openTarget);
  openTarget();
  var reopened = [];
  window.addEventListener("beforeprint", function () {
    reopened = all("details:not([open])");
    reopened.forEach(function (d) { d.open = true; });
  });
  window.addEventListener("afterprint", function () {
    reopened.forEach(function (d) { d.open = false; });
    reopened = [];
  });
})();
"""
SCRIPT_HASH = "sha256-" + base64.b64encode(hashlib.sha256(SCRIPT.encode("utf-8")).digest()).decode()

CSP = (f"default-src 'none'; script-src '{SCRIPT_HASH}'; img-src data:; style-src 'unsafe-inline'; "
       "font-src data:; base-uri 'none'; form-action 'none'")

_CSS = """
[hidden] { display: none !important; }
body.jp-Notebook { padding: 0; }
.al-page { max-width: 1180px; margin: 0 auto; padding: 24px 28px 8px;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 15px; line-height: 1.45; color: #1b1f24; }
.al-page h1 { font-size: 1.7em; margin: 0 0 4px; }
.al-page h2 { font-size: 1.35em; margin: 1.6em 0 0.5em; padding-bottom: 4px; border-bottom: 2px solid #e3e6ea; }
.al-page h3 { font-size: 1.08em; margin: 0.2em 0; }
.al-page h4 { font-size: 0.82em; text-transform: uppercase; letter-spacing: 0.04em; color: #57606a;
  margin: 0.8em 0 0.25em; }
.al-page code, .al-page pre {
  font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, "Liberation Mono", monospace; }
.al-page code { font-size: 0.9em; background: #f1f3f5; padding: 0 3px; border-radius: 3px; overflow-wrap: anywhere; }
.al-meta { color: #57606a; margin: 0 0 14px; }
.al-meta span { margin-right: 18px; }
.al-banner { border-radius: 8px; padding: 16px 20px; color: #fff; margin: 10px 0 8px; }
.al-banner-NOT-READY { background: #b3261e; }
.al-banner-READY-WITH-CONDITIONS { background: #a15c00; }
.al-banner-READY { background: #1e7d34; }
.al-banner .al-verdict { font-size: 1.7em; font-weight: 700; margin: 0; border: 0; padding: 0; color: #fff; }
.al-banner p { margin: 6px 0 0; font-size: 1.05em; }
.al-review { border-radius: 6px; padding: 10px 14px; margin: 8px 0; border: 1px solid #d0d7de; }
.al-review-INCOMPLETE { background: #fff4e5; border-color: #e7a33e; }
.al-review-COMPLETE { background: #eef8f0; border-color: #8cc79a; }
.al-review ul { margin: 4px 0 0 20px; padding: 0; }
.al-stats { display: grid; grid-template-columns: repeat(auto-fill, minmax(250px, 1fr)); gap: 10px; margin: 10px 0; }
.al-stat { border: 1px solid #d0d7de; border-radius: 6px; padding: 8px 12px; background: #fafbfc; }
.al-stat .al-stat-label { font-size: 0.8em; color: #57606a; text-transform: uppercase; letter-spacing: 0.03em; }
.al-stat .al-stat-value { font-size: 1.25em; font-weight: 650; overflow-wrap: anywhere; }
.al-stat .al-stat-note { font-size: 0.85em; color: #57606a; }
.al-stat-bad .al-stat-value { color: #b3261e; }
.al-table { border-collapse: collapse; width: 100%; margin: 6px 0 10px; font-size: 0.93em; }
.al-table th, .al-table td { border: 1px solid #d8dee4; padding: 4px 8px; text-align: left; vertical-align: top;
  overflow-wrap: anywhere; }
.al-table thead th { background: #f3f5f7; }
.al-badge { display: inline-block; padding: 1px 7px; border-radius: 10px; font-size: 0.78em; font-weight: 700;
  color: #fff; letter-spacing: 0.02em; vertical-align: 1px; white-space: nowrap; }
.al-badge-BLOCKER { background: #b3261e; }
.al-badge-WARNING { background: #a15c00; }
.al-badge-RECOMMENDATION { background: #1f5fa8; }
.al-badge-INFO { background: #6e7781; }
.al-stage-ran { background: #1e7d34; }
.al-stage-failed { background: #b3261e; }
.al-stage-partial { background: #a15c00; }
.al-stage-skipped { background: #6e7781; }
.al-tag { display: inline-block; font-size: 0.8em; color: #424a53; background: #eef1f4; border-radius: 3px;
  padding: 0 6px;
  margin-left: 4px; white-space: nowrap; }
.al-toc { border: 1px solid #d0d7de; border-radius: 6px; padding: 6px 12px; margin: 12px 0; font-size: 0.92em; }
.al-page .al-toc-head { font-size: 0.8em; text-transform: uppercase; letter-spacing: 0.04em; color: #57606a;
  border: 0; margin: 0 0 2px; padding: 0; }
.al-toc ol { margin: 0; padding: 0; list-style: none; display: inline; }
.al-toc li { display: inline; }
.al-toc li + li::before { content: " · "; color: #8c959f; }
.al-toc-sub { margin: 4px 0 0; color: #57606a; }
.al-page [id], .jp-Notebook [id] { scroll-margin-top: 64px; }
.al-filter { position: sticky; top: 0; z-index: 5; background: #fff; border: 1px solid #d0d7de; border-radius: 6px;
  padding: 8px 12px; margin: 12px 0; display: flex; flex-wrap: wrap; gap: 8px 16px; align-items: center; }
.al-filter label { font-size: 0.9em; color: #424a53; }
.al-filter select { font: inherit; font-size: 0.92em; margin-left: 4px; max-width: 260px; }
.al-filter button { font: inherit; font-size: 0.9em; }
.al-filter output { font-size: 0.9em; color: #57606a; margin-left: auto; }
.al-finding { border: 1px solid #d8dee4; border-left: 5px solid #6e7781; border-radius: 6px; margin: 10px 0;
  background: #fff; }
.al-finding.al-sev-BLOCKER { border-left-color: #b3261e; }
.al-finding.al-sev-WARNING { border-left-color: #a15c00; }
.al-finding.al-sev-RECOMMENDATION { border-left-color: #1f5fa8; }
article.al-finding { padding: 10px 14px; }
article.al-finding:target, details.al-finding:target { outline: 3px solid #f2c94c; }
details.al-finding { margin: 4px 0; }
details.al-finding > summary { cursor: pointer; padding: 6px 10px; list-style-position: outside; margin-left: 14px; }
details.al-finding > summary .al-sum-title { font-weight: 600; }
details.al-finding > summary .al-sum-where { color: #57606a; font-size: 0.9em; overflow-wrap: anywhere; }
details.al-finding > .al-body { padding: 0 14px 10px 24px; border-top: 1px dashed #d8dee4; }
.al-finding-head { display: flex; flex-wrap: wrap; align-items: baseline; gap: 6px; }
.al-finding-head h3 { flex: 1 1 100%; order: 2; }
.al-permalink { color: #8c959f; text-decoration: none; font-size: 0.85em; margin-left: auto; }
.al-locs { list-style: none; margin: 0; padding: 0; }
.al-locs li { margin: 4px 0; }
.al-excerpt { white-space: pre-wrap; overflow-wrap: anywhere; background: #f6f8fa; border: 1px solid #e3e6ea;
  border-radius: 4px; padding: 6px 8px; margin: 3px 0 6px; font-size: 0.86em; line-height: 1.4; }
.al-routes { margin: 2px 0; }
.al-routes code { display: inline-block; margin: 1px 4px 1px 0; }
.al-fix { background: #f0f7ff; border-radius: 4px; padding: 4px 10px; }
.al-fix p, .al-why p { margin: 2px 0; white-space: pre-wrap; overflow-wrap: anywhere; }
.al-foot { font-size: 0.8em; color: #6e7781; margin-top: 6px; }
.al-group { margin: 8px 0 14px; }
.al-group > summary { cursor: pointer; font-size: 1.08em; font-weight: 650; padding: 4px 0; }
.al-count { display: inline-block; min-width: 1.6em; text-align: center; background: #eef1f4; border-radius: 10px;
  font-size: 0.8em; padding: 0 6px; margin-left: 6px; font-weight: 600; }
.al-failed { border-left: 4px solid #b3261e; padding: 0.3em 0.8em; background: #fff0f0; }
.al-empty { color: #57606a; font-style: italic; }
.al-blocker-index { margin: 4px 0 10px; padding-left: 22px; }
.al-appendix-intro { color: #57606a; }
/* the appendix: notebook outputs */
.jp-Notebook main > .jp-Cell { max-width: 1180px; margin-left: auto; margin-right: auto; }
.jp-RenderedHTMLCommon table.dataframe { table-layout: auto; border-collapse: collapse; }
.jp-RenderedHTMLCommon table.dataframe td, .jp-RenderedHTMLCommon table.dataframe th,
.jp-RenderedHTMLCommon table.dataframe thead th {
  text-align: left; vertical-align: top; white-space: normal; overflow-wrap: anywhere; word-break: normal;
  min-width: 9ch; max-width: 40em; border: 1px solid #e0e0e0; padding: 3px 6px; }
.jp-RenderedHTMLCommon table.dataframe thead th { background: #f3f5f7; }
.jp-OutputArea-output { overflow-x: auto; }
details.al-df-wrap > summary { cursor: pointer; color: #24292f; font-weight: 600; margin: 4px 0; }
@media print {
  @page { margin: 14mm 12mm; }
  body { background: #fff; }
  .al-page { max-width: none; padding: 0; font-size: 11pt; }
  .al-filter, .al-permalink, .al-noprint { display: none !important; }
  .al-banner, .al-badge, .al-stat, .al-review { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  details::details-content { content-visibility: visible; display: block; height: auto; }
  details > summary { list-style: none; }
  .al-finding-head, .al-stat, .al-banner, .al-excerpt, details.al-finding > summary { break-inside: avoid; }
  .al-page h2, .al-page h3 { break-after: avoid; }
  #al-appendix { break-before: page; }
  a { color: inherit; text-decoration: none; }
  .jp-Notebook main > .jp-Cell { max-width: none; }
}
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
{%- block body_header -%}
{{ super() }}
{{ resources.get('auditlib_front', '') }}
{%- endblock body_header -%}
{%- block body_footer -%}
<script>__SCRIPT__</script>
{{ super() }}
{%- endblock body_footer -%}
""".replace("__CSP__", CSP).replace("__CSS__", _CSS).replace("__SCRIPT__", SCRIPT)

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


_CODE_SPAN_RE = re.compile(r"`([^`\n]+)`")


def prose(s) -> str:
    """Escaped text whose balanced `code spans` (as check authors write them) become
    ``<code>``: the spans are converted after escaping, so they cannot carry markup."""
    return _CODE_SPAN_RE.sub(r"<code>\1</code>", esc(s))


def finding_anchor(f: Finding) -> str:
    """The element id of a finding on the page (``#f-<fingerprint>`` links to it)."""
    return f"f-{slug(f.fingerprint) if f.fingerprint else 'unfingerprinted'}"


def plural(n: int, word: str, many: str | None = None) -> str:
    return f"{n} {word if n == 1 else (many or word + 's')}"


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


# --------------------------------------------------------------------------- notebook tables
_DF_RE = re.compile(r'<table border="1" class="dataframe">(.*?)</table>', re.S)
_TR_RE = re.compile(r"<tr\b[^>]*>(.*?)</tr>", re.S)
_FIRST_TH_RE = re.compile(r"^\s*<th\b[^>]*>(.*?)</th>", re.S)


def tidy_dataframe_html(text: str) -> str:
    """pandas tables made readable: the default 0..n-1 index column dropped (a named or
    meaningful index is kept), header alignment left to our CSS, and a table of more than
    :data:`COLLAPSE_ROWS` rows collapsed into ``<details>`` with its row count."""

    def fix(m: re.Match) -> str:
        inner = m.group(1)
        head, sep, body = inner.partition("<tbody>")
        if not sep:
            return m.group(0)
        rows = _TR_RE.findall(body)
        firsts = [_FIRST_TH_RE.match(r) for r in rows]
        head_rows = _TR_RE.findall(head)
        range_index = (all(firsts) and [f.group(1).strip() for f in firsts] == [str(i) for i in range(len(rows))]
                       and len(head_rows) == 1 and (_FIRST_TH_RE.match(head_rows[0]) or None) is not None
                       and _FIRST_TH_RE.match(head_rows[0]).group(1).strip() == "")
        if range_index:
            head = _TR_RE.sub(lambda r: r.group(0).replace(_FIRST_TH_RE.match(r.group(1)).group(0), "", 1), head)
            body = _TR_RE.sub(lambda r: r.group(0).replace(_FIRST_TH_RE.match(r.group(1)).group(0), "", 1)
                              if _FIRST_TH_RE.match(r.group(1)) else r.group(0), body)
        head = head.replace('<tr style="text-align: right;">', "<tr>")
        table = f'<table border="1" class="dataframe al-df">{head}<tbody>{body}</table>'
        if len(rows) > COLLAPSE_ROWS:
            table = (f'<details class="al-df-wrap"><summary>Show the table ({len(rows)} rows)</summary>'
                     f"{table}</details>")
        return table

    return _DF_RE.sub(fix, text)


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
                if "text/html" in out["data"]:
                    h = out["data"]["text/html"]
                    h = "".join(h) if isinstance(h, list) else h
                    out["data"]["text/html"] = tidy_dataframe_html(h)
            outs.append(out)
        cell.outputs = outs
    elif cell.cell_type == "markdown":
        # the notebooks' own headings sit one level below the section heading
        cell.source = re.sub(r"^(#{1,5}) ", r"#\1 ", cell.source, flags=re.M)
    return cell


def _notebook_order(run: RunResult) -> list[NotebookResult]:
    return sorted(run.notebooks, key=lambda nb: nb.area != "summary")  # stable: summary first


# --------------------------------------------------------------------------- findings
def _loc_html(loc) -> str:
    out = f'<li><code class="al-loc">{esc(c.loc_str(loc))}</code>'
    if loc.excerpt:
        out += f'<pre class="al-excerpt">{esc(loc.excerpt.rstrip())}</pre>'
    return out + "</li>"


def evidence_html(f: Finding) -> str:
    """Locations (file:line and excerpt), affected routes, tables and settings."""
    parts = []
    if f.locations:
        shown, rest = f.locations[:SHOW_LOCATIONS], f.locations[SHOW_LOCATIONS:]
        lis = "".join(_loc_html(loc) for loc in shown)
        parts.append(f'<ul class="al-locs">{lis}</ul>')
        if rest:
            parts.append(f'<details class="al-more"><summary>{plural(len(rest), "more location")}</summary>'
                         f'<ul class="al-locs">{"".join(_loc_html(loc) for loc in rest)}</ul></details>')
    if f.routes:
        codes = [f"<code>{esc(c.route_str(r))}</code>" for r in f.routes]
        head = f'<h4>Affected routes ({len(codes)})</h4><div class="al-routes">'
        if len(codes) > SHOW_ROUTES:
            parts.append(head + "".join(codes[:SHOW_ROUTES]) + "</div>"
                         f'<details class="al-more"><summary>{plural(len(codes) - SHOW_ROUTES, "more route")}'
                         f'</summary><div class="al-routes">{"".join(codes[SHOW_ROUTES:])}</div></details>')
        else:
            parts.append(head + "".join(codes) + "</div>")
    if f.tables:
        parts.append("<h4>Tables</h4><div class=\"al-routes\">"
                     + "".join(f"<code>{esc(t)}</code>" for t in f.tables) + "</div>")
    if f.settings:
        parts.append("<h4>Settings</h4><div class=\"al-routes\">"
                     + "".join(f"<code>{esc(s)}</code>" for s in f.settings) + "</div>")
    if not parts:
        return '<p class="al-empty">No evidence recorded.</p>'
    return "".join(parts)


def _finding_body(f: Finding) -> str:
    return (f"<h4>Evidence</h4>{evidence_html(f)}"
            f'<div class="al-why"><h4>Why it matters</h4><p>{prose(f.message)}</p></div>'
            f'<div class="al-fix"><h4>How to fix</h4><p>{prose(f.fix or "—")}</p></div>'
            f'<div class="al-foot">{esc(f.check)} · {esc(AREAS.get(f.area, f.area))} · source '
            f"{esc(f.source)} · fingerprint <code>{esc(f.fingerprint)}</code></div>")


def _data_attrs(f: Finding) -> str:
    return (f'data-sev="{esc(f.severity.value)}" data-area="{esc(f.area)}" data-check="{esc(f.check)}"')


def _badges(f: Finding, area: bool = True) -> str:
    sev = esc(f.severity.value)
    return (f'<span class="al-badge al-badge-{sev}">{sev}</span>'
            f'<span class="al-tag">{esc(f.check)}</span>'
            + (f'<span class="al-tag">{esc(AREAS.get(f.area, f.area))}</span>' if area else ""))


def finding_card(f: Finding) -> str:
    """A finding in full (the blockers): badges, title, evidence, why, fix."""
    a = finding_anchor(f)
    return (f'<article class="al-finding al-sev-{esc(f.severity.value)}" id="{a}" {_data_attrs(f)}>'
            f'<div class="al-finding-head">{_badges(f)}'
            f'<a class="al-permalink" href="#{a}" title="Link to this finding">#{esc(f.fingerprint)}</a>'
            f"<h3>{prose(f.title)}</h3></div>{_finding_body(f)}</article>")


def finding_row(f: Finding, area: bool = True) -> str:
    """A finding as one line that opens on its evidence, why and fix (``area``: show its
    area's tag, pointless inside a group of one area)."""
    a = finding_anchor(f)
    where = c.first_loc_str(f) if any(loc.file not in ("", ".") or loc.line for loc in f.locations) else ""
    if f.routes:
        where += (" · " if where else "") + plural(len(f.routes), "route")
    return (f'<details class="al-finding al-sev-{esc(f.severity.value)}" id="{a}" {_data_attrs(f)}>'
            f"<summary>{_badges(f, area)} <span class=\"al-sum-title\">{prose(f.title)}</span>"
            + (f' <span class="al-sum-where">— {esc(where)}</span>' if where else "")
            + f'</summary><div class="al-body"><p class="al-foot"><a class="al-permalink" href="#{a}">'
            f"link to this finding</a></p>{_finding_body(f)}</div></details>")


def _group(title: str, anchor: str, findings: list[Finding], open_: bool, one_area: bool = False) -> str:
    rows = "".join(finding_row(f, area=not one_area) for f in findings)
    return (f'<details class="al-group" id="{esc(anchor)}" data-al-group{" open" if open_ else ""}>'
            f'<summary>{esc(title)}<span class="al-count" data-al-count>{len(findings)}</span></summary>'
            f"{rows}</details>")


def _by_area(findings: list[Finding]) -> list[tuple[str, list[Finding]]]:
    order = list(AREAS) + sorted({f.area for f in findings} - set(AREAS))
    return [(a, [f for f in findings if f.area == a]) for a in order if any(f.area == a for f in findings)]


# --------------------------------------------------------------------------- front page
def critical_stats(run: RunResult) -> list[tuple[str, str, str, bool]]:
    """(label, value, note, bad) of the report template's critical statistics."""
    fs = run.findings
    n = counts(fs)
    sec = counts([f for f in fs if f.area == "security"])
    ts = c.suite_stats(run)
    if not ts.ran:
        tests, tests_note, tests_bad = "not run", ts.reason, False
    elif ts.passed is None or ts.failed is None:
        tests, tests_note, tests_bad = "ran", "results unavailable", False
    else:
        tests = f"{ts.passed} passed / {ts.failed} failed"
        tests_note = f"{ts.skipped} skipped" if ts.skipped else ""
        tests_bad = bool(ts.failed)
    ep = run.stats.get("endpoints_reviewed")
    score = c.isolation_score(run)
    return [
        ("Blockers", str(n["BLOCKER"]), "must be fixed before production", n["BLOCKER"] > 0),
        ("Warnings", str(n["WARNING"]), "fix soon after launch", False),
        ("Security issues", f"{sec['BLOCKER']} critical, {sec['WARNING']} high",
         f"{sec['RECOMMENDATION']} medium", sec["BLOCKER"] > 0),
        ("Tests", tests, tests_note, tests_bad),
        ("Coverage", c.coverage_str(run), "", False),
        ("Endpoints reviewed", f"{ep} total" if ep is not None else "not inventoried", "", False),
        ("Data isolation score", "not assessed" if score is None else f"{score}/10", "SEC-010..SEC-013",
         score is not None and score < 10),
        ("Estimated time to production ready", c.days_str(c.estimated_days(run)),
         "1 day per blocker, ½ per warning", False),
    ]


def _stage_kind(status: str) -> str:
    if stage_ran(status):
        return "ran"
    head = str(status).split(":", 1)[0].strip().lower()
    return head if head in ("failed", "partial", "skipped") else "failed"


def stages_table_html(run: RunResult) -> str:
    if not run.stages:
        return "<p>No stages recorded.</p>"
    rows = []
    for k, v in run.stages.items():
        kind = _stage_kind(v)
        detail = str(v).split(":", 1)[1].strip() if ":" in str(v) else ""
        rows.append(f'<tr><td><strong>{esc(k)}</strong></td><td><span class="al-badge al-stage-{kind}">'
                    f"{kind}</span></td><td>{esc(detail)}</td></tr>")
    nbs = "".join(
        f"<tr><td>{esc(nb.title)}</td><td>{esc(nb.status)}</td><td>{nb.duration:.1f}s</td>"
        f"<td>{esc(nb.error)}</td></tr>" for nb in _notebook_order(run))
    return ('<table class="al-table"><thead><tr><th style="width:9em">Stage</th><th style="width:6em">Status'
            f"</th><th>Details</th></tr></thead><tbody>{''.join(rows)}</tbody></table>"
            + (f'<details class="al-more"><summary>Notebooks ({len(run.notebooks)})</summary>'
               '<table class="al-table"><thead><tr><th>Notebook</th><th>Status</th>'
               f"<th>Duration</th><th>Error</th></tr></thead><tbody>{nbs}</tbody></table></details>"
               if run.notebooks else ""))


def header_html(run: RunResult) -> str:
    """Title, metadata, the verdict banner and the Review Status."""
    n = counts(run.findings)
    v = c.verdict_of(run)
    status, reasons = c.review_status(run)
    if n["BLOCKER"]:
        lead = (f"{plural(n['BLOCKER'], 'blocker')} must be fixed before production"
                + (f"; {plural(n['WARNING'], 'warning')} soon after launch." if n["WARNING"] else "."))
    elif n["WARNING"]:
        lead = f"No blockers; {plural(n['WARNING'], 'warning')} must be fixed soon after launch."
    else:
        lead = "No blockers or warnings were found."
    review = (f'<div class="al-review al-review-{status}" id="al-review"><strong>Review Status:</strong> '
              f"{esc(status)}")
    if reasons:
        review += (" — the verdict covers only what ran:<ul>"
                   + "".join(f"<li>{esc1(r)}</li>" for r in c.incomplete_items(run)) + "</ul>")
    review += "</div>"
    return (
        '<header class="al-header">'
        '<h1 id="auditlib-top">Production Readiness Audit Report</h1>'
        f'<p class="al-meta"><span><strong>Application:</strong> {esc1(run.target_name)}</span>'
        f"<span><strong>Audit Date:</strong> {esc1(run.started.date().isoformat())}</span>"
        f"<span><strong>Auditor:</strong> auditlib {esc1(run.tool_version)}</span>"
        + (f"<span><strong>Commit:</strong> <code>{esc1(run.commit)}</code></span>" if run.commit else "")
        + "</p>"
        f'<div class="al-banner al-banner-{slug(v.value).upper()}" id="auditlib-verdict">'
        f'<h2 class="al-verdict">Verdict: {esc1(v.value)}</h2><p>{esc(lead)}</p></div>'
        f"{review}</header>")


def stats_html(run: RunResult) -> str:
    tiles = "".join(
        f'<div class="al-stat{" al-stat-bad" if bad else ""}"><div class="al-stat-label">{esc(label)}</div>'
        f'<div class="al-stat-value">{esc(value)}</div>'
        + (f'<div class="al-stat-note">{esc(note)}</div>' if note else "") + "</div>"
        for label, value, note, bad in critical_stats(run))
    cov = []
    for key, label in (("files_indexed", "files indexed"), ("files_unparsed", "files unparsed")):
        if key in run.stats:
            cov.append(f"{esc(run.stats[key])} {label}")
    if run.stats.get("db_url"):
        cov.append(f"database <code>{esc(run.stats['db_url'])}</code>")
    return (f'<div class="al-stats">{tiles}</div>'
            + (f'<p class="al-meta">Audit coverage: {", ".join(cov)}</p>' if cov else ""))


def filter_html(findings: list[Finding]) -> str:
    sev = "".join(f'<option value="{s}">{s.title()}</option>' for s in SEVERITIES
                  if any(f.severity.value == s for f in findings))
    areas = "".join(f'<option value="{esc(a)}">{esc(AREAS.get(a, a))}</option>'
                    for a, _ in _by_area(findings))
    checks = "".join(f'<option value="{esc(k)}">{esc(k)}</option>'
                     for k in sorted({f.check for f in findings}))
    return ('<div class="al-filter" id="al-filter" role="search">'
            '<label>Severity <select id="al-filter-sev"><option value="">all</option>' + sev + "</select></label>"
            '<label>Area <select id="al-filter-area"><option value="">all</option>' + areas + "</select></label>"
            '<label>Check <select id="al-filter-check"><option value="">all</option>' + checks + "</select></label>"
            '<button type="button" id="al-filter-reset">Show all</button>'
            f'<output id="al-filter-status">All {len(findings)} findings</output></div>')


FRONT_SECTIONS = [
    ("auditlib-verdict", "Verdict and review status"),
    ("al-stats", "Critical statistics"),
    ("al-stages", "Audit stages"),
    ("al-blockers", "Blockers"),
    ("al-warnings", "Warnings"),
    ("al-other", "Recommendations and information"),
    ("al-appendix", "Appendix: the workbook"),
]


def toc_html(run: RunResult, sections: list[Section], appendix: bool = True) -> str:
    n = counts(run.findings)
    extra = {"al-blockers": n["BLOCKER"], "al-warnings": n["WARNING"],
             "al-other": n["RECOMMENDATION"] + n["INFO"]}
    items = []
    for anchor, title in FRONT_SECTIONS:
        if anchor == "al-appendix" and not appendix:
            continue
        label = esc(title) + (f" ({extra[anchor]})" if anchor in extra else "")
        items.append(f'<li><a href="#{anchor}">{label}</a></li>')
    sub = ""
    if appendix and sections:
        sub = ('<div class="al-toc-sub">Appendix: <ol>' + "".join(
            f'<li><a href="#{esc(s.anchor)}">{esc1(s.title)}</a>'
            + (" <em>(failed)</em>" if s.failed else "") + "</li>" for s in sections) + "</ol></div>")
    return (f'<nav class="al-toc auditlib-toc" id="{ANCHOR_PREFIX}toc">'
            f'<h2 id="{ANCHOR_PREFIX}contents" class="al-toc-head">Contents</h2><ol>{"".join(items)}</ol>{sub}</nav>')


def findings_html(run: RunResult) -> str:
    """Blockers in full, warnings by area, recommendations and information collapsed."""
    fs = c.sorted_findings(run.findings)
    blockers = [f for f in fs if f.severity is Severity.BLOCKER]
    warnings = [f for f in fs if f.severity is Severity.WARNING]
    other = [f for f in fs if f.severity.rank < Severity.WARNING.rank]
    out = ['<div class="al-findings" id="al-findings">', filter_html(fs)]

    out.append(f'<h2 id="al-blockers">Blockers — must fix before production <span class="al-count" '
               f'data-al-count-of="al-blocker-list">{len(blockers)}</span></h2>')
    if blockers:
        if len(blockers) > 3:
            out.append('<ol class="al-blocker-index al-noprint">' + "".join(
                f'<li><a href="#{finding_anchor(f)}">{prose(f.title)}</a> '
                f'<span class="al-tag">{esc(f.check)}</span></li>' for f in blockers) + "</ol>")
        out.append('<div data-al-group id="al-blocker-list">' + "".join(finding_card(f) for f in blockers) + "</div>")
    else:
        out.append('<p class="al-empty">No blockers.</p>')

    out.append(f'<h2 id="al-warnings">Warnings — fix soon after launch <span class="al-count" '
               f'data-al-count-of="al-warning-list">{len(warnings)}</span></h2>')
    if warnings:
        out.append('<div id="al-warning-list">')
        for area, group in _by_area(warnings):
            out.append(_group(AREAS.get(area, area), f"al-warnings-{slug(area)}", group,
                              open_=len(group) <= COLLAPSE_GROUP, one_area=True))
        out.append("</div>")
    else:
        out.append('<p class="al-empty">No warnings.</p>')

    out.append(f'<h2 id="al-other">Recommendations and information <span class="al-count" '
               f'data-al-count-of="al-other-list">{len(other)}</span></h2>')
    if other:
        out.append('<div id="al-other-list">')
        for sev in (Severity.RECOMMENDATION, Severity.INFO):
            group = [f for f in other if f.severity is sev]
            if group:
                title = "Recommendations" if sev is Severity.RECOMMENDATION else "Information (inventory)"
                out.append(_group(title, f"al-other-{slug(sev.value)}", group, open_=False))
        out.append("</div>")
    else:
        out.append('<p class="al-empty">None.</p>')
    out.append("</div>")
    return "".join(out)


def changes_html(ch: dict) -> str:
    """"Changes since the previous audit", from ``diff.Changes.to_dict()``."""
    def items(rows, old=False):
        return "<ul>" + "".join(
            f'<li><span class="al-tag">{esc(x["check"])}</span> '
            + (f'{esc(x["old_severity"])} &rarr; ' if old else "")
            + f'{esc(x["severity"])}: {esc(x["title"])} <span class="al-loc">{esc(x["file"])}'
            + (f':{esc(x["line"])}' if x["line"] else "") + "</span></li>" for x in rows) + "</ul>"
    out = ['<section class="al-changes" id="al-changes"><h2>Changes since the previous audit</h2>',
           f'<p>Verdict: <strong>{esc(ch["verdict"]["old"])}</strong> &rarr; <strong>{esc(ch["verdict"]["new"])}'
           f'</strong>. New: {len(ch["new"])}, resolved: {len(ch["resolved"])}, severity changed: '
           f'{len(ch["severity_changed"])}, persisting: {esc(ch["persisting"])}.</p>']
    for title, key in (("New findings", "new"), ("Resolved findings", "resolved"),
                       ("Suppressed in review (not fixed)", "suppressed")):
        if ch.get(key):
            out.append(f"<h3>{title}</h3>" + items(ch[key]))
    if ch["severity_changed"]:
        out.append("<h3>Severity changed</h3>" + items(ch["severity_changed"], old=True))
    return "".join(out) + "</section>"


def suppressed_html(run: RunResult) -> str:
    """Findings a review set aside, with their judgement: listed, never dropped."""
    if not run.suppressed:
        return ""
    rows = "".join(
        f'<tr><td>{esc(f.check)}</td><td>{esc(f.severity.value)}</td><td>{esc(f.title)}</td>'
        f'<td>{esc((f.locations[0].file + (":" + str(f.locations[0].line) if f.locations[0].line else "")) if f.locations else "")}</td>'
        f'<td>{esc(j["status"] + (" until " + j["expires"] if j.get("expires") else ""))}</td>'
        f'<td>{esc(j["reason"])}</td><td>{esc(j.get("reviewer") or "")}</td></tr>'
        for f, j in run.suppressed)
    return (f'<h2 id="al-suppressed">Suppressed in review <span class="al-count">{len(run.suppressed)}</span></h2>'
            '<p>Judged in review and left out of the verdict and the counts above.</p>'
            '<table class="al-table"><thead><tr><th>Check</th><th>Severity</th><th>Finding</th><th>Location</th>'
            f'<th>Judgement</th><th>Reason</th><th>Reviewer</th></tr></thead><tbody>{rows}</tbody></table>')


def front_html(run: RunResult, sections: list[Section], *, appendix: bool = True) -> str:
    """Everything before the appendix, then the appendix heading."""
    failed = [s for s in sections if s.failed]
    parts = [
        '<div class="al-page" id="al-front">',
        header_html(run),
        toc_html(run, sections, appendix),
        f'<h2 id="al-stats">Critical statistics</h2>{stats_html(run)}',
        f'<h2 id="al-stages">Audit stages</h2>{stages_table_html(run)}',
        findings_html(run),
        suppressed_html(run),
    ]
    if run.changes:  # with a baseline, the page opens with what changed (after the verdict)
        parts.insert(2, changes_html(run.changes))
    if appendix:
        parts.append('<h2 id="al-appendix">Appendix: the workbook</h2>'
                     '<p class="al-appendix-intro">The executed notebooks, one section per audit area '
                     "and stage: the inventories and tables behind the findings above.</p>")
        if failed:
            parts.append('<div class="al-failed"><p><strong>Sections that failed:</strong> '
                         + "; ".join(f"{esc1(s.title)} ({esc1(s.error)})" for s in failed) + "</p></div>")
    parts.append("</div>")
    return "".join(parts)


# --------------------------------------------------------------------------- stitching
def _appendix(run: RunResult) -> tuple[list[Section], list[NotebookNode]]:
    """One section per executed notebook (summary first): its heading and cleaned cells."""
    sections: list[Section] = []
    cells_out: list[NotebookNode] = []
    for si, nbr in enumerate(_notebook_order(run), start=1):
        cells, error = _load(nbr)
        sec = Section(f"{ANCHOR_PREFIX}sec-{si:02d}-{slug(nbr.area)}", nbr.title or nbr.area, bool(error),
                      error, nbr)
        sections.append(sec)
        cells_out.append(_md(f'<h2 id="{esc(sec.anchor)}">{esc1(sec.title)}</h2>', f"s{si:02d}-head"))
        if sec.failed:
            cells_out.append(_md(
                f'<div class="auditlib-failed al-failed"><p><strong>This section failed:</strong> '
                f"{esc1(sec.error)}</p></div>", f"s{si:02d}-failed"))
        k = 0
        for ci, cell in enumerate(cells):
            if ci == 0 and cell.cell_type == "markdown" and cell.source.startswith("# "):
                # the notebook's own title: the section heading above replaces it
                cell = nbformat.from_dict({**cell, "source": cell.source.split("\n", 1)[1]
                                           if "\n" in cell.source else ""})
            new = _clean_cell(cell, f"s{si:02d}-c{k:04d}")
            if new is not None:
                cells_out.append(new)
                k += 1
    return sections, cells_out


def _new_notebook(run: RunResult) -> NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"title": f"Production readiness audit — {run.target_name}",
                   "auditlib": {"target": run.target_name, "version": run.tool_version,
                                "verdict": c.verdict_of(run).value}}
    return nb


def _check_ids(nb: NotebookNode) -> NotebookNode:
    ids = [cell.id for cell in nb.cells]
    assert len(ids) == len(set(ids)), "duplicate cell ids in the stitched notebook"
    return nb


def appendix_notebook(run: RunResult) -> tuple[list[Section], NotebookNode]:
    """The notebook the HTML appendix is rendered from (the front page is generated)."""
    sections, cells = _appendix(run)
    nb = _new_notebook(run)
    nb.cells = cells
    return sections, _check_ids(nb)


def build_report_notebook(run: RunResult) -> NotebookNode:
    """``report.ipynb``: verdict header, contents, one section per executed notebook, every
    finding and the stages (the same facts as the HTML front page, as notebook cells)."""
    sections, cells = _appendix(run)
    nb = _new_notebook(run)
    extra = [Section(f"{ANCHOR_PREFIX}all-findings", "All findings"),
             Section(f"{ANCHOR_PREFIX}stages", "Audit stages and notebooks")]
    toc = "".join(f'<li><a href="#{esc(s.anchor)}">{esc1(s.title)}</a>'
                  + (" <em>(failed)</em>" if s.failed else "") + "</li>" for s in sections + extra)
    status = c.review_status_line(run)
    n = counts(run.findings)
    nb.cells.append(_md(
        f'<h1 id="auditlib-top">Production Readiness Audit Report</h1><p><strong>Application:</strong> '
        f"{esc1(run.target_name)}<br><strong>Verdict:</strong> {esc1(c.verdict_label(c.verdict_of(run)))}<br>"
        + " · ".join(f"{s}: {n[s]}" for s in SEVERITIES)
        + f"<br><strong>Review Status:</strong> {esc1(status)}</p>", "auditlib-header"))
    nb.cells.append(_md(f'<nav class="auditlib-toc" id="{ANCHOR_PREFIX}toc"><h2 id="{ANCHOR_PREFIX}contents">'
                        f"Contents</h2><ol>{toc}</ol></nav>", "auditlib-toc"))
    nb.cells.extend(cells)
    fs = c.sorted_findings(run.findings)
    nb.cells.append(_md(f'<h2 id="{extra[0].anchor}">{esc(extra[0].title)}</h2>', "findings-head"))
    nb.cells.append(_html_cell("".join(finding_row(f) for f in fs) or "<p>No findings.</p>",
                               f"{len(fs)} findings", "findings-table"))
    nb.cells.append(_md(f'<h2 id="{extra[1].anchor}">{esc(extra[1].title)}</h2>', "stages-head"))
    nb.cells.append(_html_cell(stages_table_html(run), "stages", "stages-table"))
    return _check_ids(nb)


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


def export_html(nb: NotebookNode, front: str = "") -> str:
    """Render ``nb`` (the appendix) with nbconvert, ``front`` (trusted, generated HTML)
    placed before it and our script after it."""
    body, _ = _exporter().from_notebook_node(
        nb, resources={"metadata": {"name": "report"}, "auditlib_front": front})
    body, _ = dedupe_heading_ids(body)
    body, n = strip_external(body)
    if n:
        log.warning("report.html: removed %d external script/link tag(s) from notebook outputs", n)
    return body


def render_html(run: RunResult) -> str:
    """The whole ``report.html``: front page, findings, then the notebooks as the appendix."""
    sections, nb = appendix_notebook(run)
    return export_html(nb, front_html(run, sections))


def minimal_html(run: RunResult, error: str) -> str:
    """Fallback page when the notebook export fails: the front page, every finding, the error."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1.0">'
        f"<title>Production readiness audit — {esc1(run.target_name)}</title>"
        f'<style type="text/css">{_CSS}</style></head><body>'
        '<div class="al-page"><div class="al-failed"><p><strong>The full HTML report could not be built:'
        f"</strong> {esc1(error)}</p><p>The workbook appendix is missing; see report.md, findings.json and "
        "the executed notebooks.</p></div></div>"
        f"{front_html(run, [], appendix=False)}"
        f"<script>{SCRIPT}</script></body></html>\n")

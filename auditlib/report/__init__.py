"""Report writers: findings.json, report.md, report.sarif, report.html (+ report.ipynb).

Public API::

    from auditlib.report import RunResult, NotebookResult, write_reports
    paths = write_reports(run, out_dir)   # {"json", "markdown", "sarif", "html", "notebook"}

Lower-level: ``findings_json(run)``, ``render_markdown(run)``, ``sarif_report(run)``,
``build_report_notebook(run)`` (report.ipynb), ``render_html(run)`` (report.html).
"""
from __future__ import annotations

import logging
from pathlib import Path

import nbformat

from .html import build_report_notebook, export_html, minimal_html, render_html
from .json_report import findings_json, write_findings_json
from .markdown import render_markdown, write_markdown
from .model import NotebookResult, RunResult
from .sarif import sarif_report, write_sarif

log = logging.getLogger(__name__)

__all__ = [
    "NotebookResult", "RunResult", "write_reports",
    "findings_json", "render_markdown", "sarif_report", "build_report_notebook", "export_html",
    "render_html",
]

FILENAMES = {
    "json": "findings.json",
    "markdown": "report.md",
    "sarif": "report.sarif",
    "html": "report.html",
    "notebook": "report.ipynb",
}


def write_reports(run: RunResult, out_dir: Path) -> dict[str, Path]:
    """Write every report into ``out_dir``; returns {kind: path} of the files written.

    The HTML report is best effort: if stitching/exporting the notebooks fails, the
    error is logged and a self-contained ``report.html`` without the appendix (front page,
    every finding, the error) is written instead; the other files are unaffected.
    ``report.ipynb`` (the stitched notebook) is only present when stitching succeeded.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": write_findings_json(run, out / FILENAMES["json"]),
        "markdown": write_markdown(run, out / FILENAMES["markdown"]),
        "sarif": write_sarif(run, out / FILENAMES["sarif"]),
    }
    html_path = out / FILENAMES["html"]
    nb_path = out / FILENAMES["notebook"]
    nb_path.unlink(missing_ok=True)  # never leave a stale stitched notebook behind
    try:
        nb = build_report_notebook(run)
        nbformat.write(nb, str(nb_path))
        paths["notebook"] = nb_path
        html_path.write_text(render_html(run), encoding="utf-8")
    except Exception as exc:  # noqa: BLE001 - the HTML must never sink the other reports
        log.exception("report.html: export failed, writing the minimal fallback page")
        html_path.write_text(minimal_html(run, f"{type(exc).__name__}: {exc}"), encoding="utf-8")
    paths["html"] = html_path
    return paths

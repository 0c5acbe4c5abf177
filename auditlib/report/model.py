"""What a finished audit run hands to the report writers."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from auditlib.findings import Finding


@dataclass
class NotebookResult:
    area: str  # "summary", "functional", "security", ... (keys of findings.AREAS)
    title: str
    path: Path | None  # executed .ipynb, None if it never ran
    status: str  # "ok" | "failed"
    error: str = ""  # one line when failed
    duration: float = 0.0

    @property
    def failed(self) -> bool:
        return self.status != "ok" or self.path is None


@dataclass
class RunResult:
    tool_version: str
    target_root: Path
    target_name: str
    commit: str | None
    started: datetime
    finished: datetime
    stages: dict[str, str]  # stage -> "ran[: details]" | "skipped: reason" | "failed: reason"
    findings: list[Finding]  # already fingerprinted
    notebooks: list[NotebookResult]  # "summary" first
    # optional: endpoints_reviewed, tests_passed, tests_failed, tests_skipped, coverage (percent,
    # 0-100), files_indexed, files_unparsed, db_url (already redacted)
    stats: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    # findings a review judged (false positive, accepted risk, fixed elsewhere): listed with
    # their judgement, left out of the verdict and the counts; [(finding, judgement dict)]
    suppressed: list = field(default_factory=list)
    changes: dict | None = None  # diff.Changes.to_dict() against a baseline audit, if given

    def stages_not_run(self) -> dict[str, str]:
        """Stages whose status is anything but "ran" (skipped or failed), in run order."""
        return {k: v for k, v in self.stages.items() if stage_ran(v) is False}

    def failed_notebooks(self) -> list[NotebookResult]:
        return [nb for nb in self.notebooks if nb.failed]

    @property
    def complete(self) -> bool:
        return not self.stages_not_run() and not self.failed_notebooks()


def stage_ran(status: str | None) -> bool | None:
    """True for "ran" / "ran: details", False for "skipped: ..."/"failed: ..." (or anything
    else), None if the stage is absent."""
    if status is None:
        return None
    s = str(status).strip().lower()
    return s == "ran" or s.startswith("ran:")

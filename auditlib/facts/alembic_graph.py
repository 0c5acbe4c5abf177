"""The Alembic revision graph, read statically from the revision files (no import)."""
from __future__ import annotations

import ast
from dataclasses import dataclass, field

from ..target.index import CodeIndex
from ..code.pyast import NOT_LITERAL, literal, walk

_MISSING = object()


@dataclass
class Revision:
    file: str
    revision: str | None
    revision_line: int | None
    down_revisions: tuple[str, ...]  # empty for a base
    down_line: int | None
    has_down: bool  # whether `down_revision` is assigned at all
    branch_labels: tuple[str, ...] = ()
    depends_on: tuple[str, ...] = ()
    message: str = ""
    upgrade_line: int | None = None  # `def upgrade` (None when missing)
    downgrade_line: int | None = None  # `def downgrade` (None when missing)
    upgrade_empty: bool = True  # no schema operation (only pass / docstrings / data statements)
    downgrade_empty: bool = True
    downgrade_raises: bool = False  # an explicit "irreversible" raise


@dataclass
class RevisionGraph:
    revisions: list[Revision] = field(default_factory=list)

    @property
    def by_id(self) -> dict[str, Revision]:
        return {r.revision: r for r in self.revisions if r.revision}

    @property
    def heads(self) -> list[Revision]:
        referenced = {d for r in self.revisions for d in r.down_revisions}
        return [r for r in self.revisions if r.revision and r.revision not in referenced]

    @property
    def bases(self) -> list[Revision]:
        return [r for r in self.revisions if r.revision and r.has_down and not r.down_revisions]

    def ancestors(self, rid: str) -> set[str]:
        """Every revision reachable through down_revision links (not including rid)."""
        ids, seen, todo = self.by_id, set(), [rid]
        while todo:
            r = ids.get(todo.pop())
            for d in (r.down_revisions if r else ()):
                if d not in seen:
                    seen.add(d)
                    todo.append(d)
        return seen

    def branch_of(self, rid: str) -> set[str]:
        """Branch labels that apply to ``rid``: its own and those of its ancestors."""
        ids = self.by_id
        return {lbl for r in ({rid} | self.ancestors(rid)) if r in ids for lbl in ids[r].branch_labels}

    def unknown_dependencies(self) -> list[tuple[Revision, str]]:
        """(revision, name) for each ``depends_on`` entry that is neither a revision id nor a label."""
        names = set(self.by_id) | {lbl for r in self.revisions for lbl in r.branch_labels}
        return [(r, d) for r in self.revisions for d in r.depends_on if d not in names]

    def duplicate_labels(self) -> list[tuple[Revision, str]]:
        seen, out = set(), []
        for r in self.revisions:
            for lbl in r.branch_labels:
                if lbl in seen:
                    out.append((r, lbl))
                seen.add(lbl)
        return out

    def duplicates(self) -> list[Revision]:
        seen, dups = set(), []
        for r in self.revisions:
            if r.revision in seen:
                dups.append(r)
            seen.add(r.revision)
        return dups

    def cycles(self) -> list[str]:
        """Revision ids that sit on a cycle of down_revision links."""
        ids = self.by_id
        state: dict[str, int] = {}
        on_cycle: list[str] = []

        def visit(rid: str, stack: list[str]) -> None:
            state[rid] = 1
            stack.append(rid)
            for d in ids[rid].down_revisions:
                if d not in ids:
                    continue
                if state.get(d) == 1:
                    on_cycle.extend(stack[stack.index(d):])
                elif d not in state:
                    visit(d, stack)
            stack.pop()
            state[rid] = 2

        for rid in ids:
            if rid not in state:
                visit(rid, [])
        return sorted(set(on_cycle))

    def order(self) -> list[Revision]:
        """Base-to-head order (topological) for display; ties by file name."""
        ids, done, out = self.by_id, set(), []

        def visit(r: Revision, guard: set) -> None:
            if r.revision in done or r.revision in guard:
                return
            guard.add(r.revision)
            for d in r.down_revisions:
                if d in ids:
                    visit(ids[d], guard)
            done.add(r.revision)
            out.append(r)

        for r in sorted(self.revisions, key=lambda r: r.file):
            if r.revision:
                visit(r, set())
        return out


def _as_tuple(value) -> tuple[str, ...]:
    if value is None or value is NOT_LITERAL:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (tuple, list)):
        return tuple(str(v) for v in value)
    return ()


_DATA_OPS = {"execute", "bulk_insert", "get_bind", "get_context", "inline_literal", "f"}


def _changes_schema(func) -> bool:
    """Whether the function calls an ``op.<x>`` schema operation (not just data statements)."""
    return func is not None and any(
        isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and isinstance(n.func.value, ast.Name)
        and n.func.value.id == "op" and n.func.attr not in _DATA_OPS for n in walk(func))


def _is_empty(func) -> bool:
    """No function, or a body of only ``pass`` / docstrings / ``...`` / comments."""
    if func is None:
        return True
    return all(isinstance(st, ast.Pass) or (isinstance(st, ast.Expr) and isinstance(st.value, ast.Constant))
               for st in func.body)


def read_graph(index: CodeIndex, migration_files: list[str]) -> RevisionGraph:
    graph = RevisionGraph()
    for path in migration_files:
        src = index.get(path)
        if src is None or src.tree is None:
            continue
        values: dict[str, tuple[object, int]] = {}
        for stmt in src.tree.body:
            targets, value = [], None
            if isinstance(stmt, ast.Assign):
                targets, value = [t for t in stmt.targets if isinstance(t, ast.Name)], stmt.value
            elif isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
                targets, value = [stmt.target], stmt.value
            for t in targets:
                values[t.id] = (literal(value), stmt.lineno)
        rev, rev_line = values.get("revision", (_MISSING, None))
        down, down_line = values.get("down_revision", (_MISSING, None))
        doc = ast.get_docstring(src.tree) or ""
        funcs = {n.name: n for n in src.tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        up_fn, down_fn = funcs.get("upgrade"), funcs.get("downgrade")
        graph.revisions.append(Revision(
            file=path,
            revision=rev if isinstance(rev, str) else None,
            revision_line=rev_line,
            down_revisions=_as_tuple(down if down is not _MISSING else None),
            down_line=down_line,
            has_down=down is not _MISSING,
            branch_labels=_as_tuple(values.get("branch_labels", (None, 0))[0]),
            depends_on=_as_tuple(values.get("depends_on", (None, 0))[0]),
            message=doc.strip().splitlines()[0] if doc.strip() else "",
            upgrade_line=up_fn.lineno if up_fn else None,
            downgrade_line=down_fn.lineno if down_fn else None,
            upgrade_empty=not _changes_schema(up_fn),
            downgrade_empty=_is_empty(down_fn),
            downgrade_raises=bool(down_fn) and any(isinstance(n, ast.Raise) for n in walk(down_fn)),
        ))
    return graph

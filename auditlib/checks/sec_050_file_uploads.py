"""SEC-050: file uploads (size, content type, file names, path traversal) and object storage exposure."""
from __future__ import annotations

import ast
import re

from ..findings import Severity
from ..code.pyast import NOT_LITERAL, dotted, flat, literal, of_type, parent_map, source, walk
from ..code.pyresolve import Project, callees_upto
from ..facts.routes import source_routes
from . import check

SIZE_NAME = re.compile(r"size|bytes|length|max_upload|content_length", re.I)
CONTENT_SNIFF = re.compile(r"^(magic\.|filetype\.|imghdr\.what|puremagic\.|PIL\.Image\.open|"
                           r"PIL\.Image\.verify|fleep\.)")
SANITIZER = re.compile(r"secure_filename|basename|sanitiz|slugify|uuid|token_hex|token_urlsafe|clean_?name|"
                       r"safe_?name|normpath_within|hash", re.I)
GUARD = re.compile(r"is_relative_to|commonpath|within_directory", re.I)
RESOLVE = re.compile(r"resolve|realpath|abspath")
# calls whose result still carries their arguments' text (string and path builders); any
# other call (a database lookup by id, a service call) returns a server-side value
PATH_BUILDERS = {"str", "Path", "PurePath", "PurePosixPath", "join", "joinpath", "format", "replace", "strip",
                 "lstrip", "rstrip", "lower", "upper", "unquote", "unquote_plus", "expanduser", "normpath",
                 "fspath", "encode", "decode", "with_name", "with_suffix", "concat", "get"}
SAFE_PARTS = ("name", "suffix", "suffixes", "stem")  # Path(x).name / .suffix / .stem drop directories
FS_SINKS = {"open", "aiofiles.open", "os.path.join", "shutil.copy", "shutil.copyfile",
            "shutil.move", "os.remove", "os.unlink", "os.rename", "FileResponse", "send_file",
            "fastapi.responses.FileResponse", "starlette.responses.FileResponse"}
FS_METHODS = {"write_bytes", "write_text", "open", "unlink", "joinpath", "save"}
KEY_SINKS = {"put_object", "upload_fileobj", "upload_file", "copy_object", "delete_object"}
LONG_LINK_S = 24 * 3600


def _upload_params(fn) -> set[str]:
    args = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
    return {a.arg for a in args if a.annotation is not None and "UploadFile" in source(a.annotation)}


def _path_params(route) -> set[str]:
    """Handler parameters a client controls as plain strings (path/query), not dependencies."""
    fn = route.node
    names = set(re.findall(r"{(\w+)(?::path)?}", route.path))
    args = fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
    out = set()
    for a in args:
        ann = source(a.annotation) if a.annotation is not None else ""
        if "Depends" in ann:
            continue
        if ann in ("str", "Path", "str | None", "Optional[str]") or (a.arg in names and not ann):
            out.add(a.arg)
    return out


def _taint(fn, seeds: set[str], attr: str | None = None) -> set[str]:
    """Locals derived from ``seeds`` (or from ``<x>.filename`` when ``attr``), through
    assignments, unless a sanitising call wraps the value."""
    tainted = set(seeds)
    if not tainted and not attr:
        return tainted  # nothing can be dirty
    for _ in range(3):
        before = len(tainted)
        for n in of_type(fn, (ast.Assign, ast.AnnAssign)):
            if n.value is not None and _dirty(n.value, tainted, attr):
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target]):
                    if isinstance(t, ast.Name):
                        tainted.add(t.id)
        if len(tainted) == before:
            break  # a pass that adds nothing: the next ones would repeat it
    return tainted


def _dirty(expr, tainted: set[str], attr: str | None) -> bool:
    """Whether ``expr`` mentions a tainted name (or ``.attr``) outside sanitising calls."""
    f, i = flat(expr)
    order, end = f.order, f.end
    j, stop = i, end[i]
    Call, Attribute, Name = ast.Call, ast.Attribute, ast.Name
    while j < stop:
        n = order[j]
        cls = type(n)
        if cls is Call:
            name = dotted(n.func)
            if SANITIZER.search(name):
                j = end[j]  # the sanitised subtree is skipped
                continue
            last = name.rsplit(".", 1)[-1] if name else (n.func.attr if isinstance(n.func, Attribute) else "")
            if last not in PATH_BUILDERS and last != "splitext" and not (last and last[0].isupper()):
                # a lookup (`await repo.get_document(doc_id)`, `session.get(Doc, doc_id)`): its result
                # is a server-side value; only the receiver of a method call is still looked at
                if isinstance(n.func, Attribute) and _root_tainted(n.func.value, tainted):
                    return True  # tainted.method(...)
                j = end[j]
                continue
        elif cls is ast.Subscript:
            v = n.value
            if type(v) is Call and dotted(v.func).rsplit(".", 1)[-1] == "splitext" \
                    and literal(n.slice) in (1, -1):
                j = end[j]  # os.path.splitext(x)[1]: an extension, no directory
                continue
        elif cls is Attribute:
            if n.attr in SAFE_PARTS and type(n.value) is Call \
                    and dotted(n.value.func).split(".")[-1] in ("Path", "PurePath", "PurePosixPath"):
                j = end[j]  # Path(x).name / .suffix drop directories
                continue
            if attr and n.attr == attr:
                return True
        elif cls is Name and n.id in tainted:
            return True
        j += 1
    return False


def _root_tainted(node, tainted: set[str]) -> bool:
    """``x`` / ``x.a.b`` with ``x`` tainted (the receiver of a method call)."""
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name) and node.id in tainted


def _confined(fn) -> bool:
    """A containment guard in ``fn``: ``is_relative_to``/``commonpath``, or a resolved
    path compared with ``.startswith(root)``."""
    if any(GUARD.search(dotted(n)) for n in of_type(fn, (ast.Name, ast.Attribute))):
        return True
    return any(isinstance(c.func, ast.Attribute) and c.func.attr == "startswith"
               and RESOLVE.search(ast.unparse(c.func.value)) for c in of_type(fn, ast.Call))


def _sinks(proj, src, fn, tainted, attr):
    """(kind, node) where tainted data reaches a filesystem path or an object key."""
    for n in of_type(fn, ast.Call):
        q = proj.qualify(src, n.func)
        name = dotted(n.func)
        args = list(n.args) + [k.value for k in n.keywords]
        if (q in FS_SINKS or name in FS_SINKS) and any(_dirty(a, tainted, attr) for a in args):
            yield "fs", n
        elif isinstance(n.func, ast.Attribute) and n.func.attr in FS_METHODS and _dirty(n.func.value, tainted, attr):
            yield "fs", n
        elif attr and isinstance(n.func, ast.Attribute) and n.func.attr in KEY_SINKS and any(
                _dirty(a, tainted, attr) for a in args):
            yield "key", n


DECLARED_ATTRS = ("content_type", "suffix", "filename")
DECLARED_CALLS = ("endswith", "splitext", "guess_type", "guess_extension")


def _declared_names(fn) -> set[str]:
    """Locals holding the client's declaration: assigned from ``file.content_type``, the
    file name, its suffix or ``mimetypes.guess_type(name)`` (through other locals too)."""
    names: set[str] = set()
    for _ in range(3):
        before = len(names)
        for n in of_type(fn, (ast.Assign, ast.AnnAssign)):
            if n.value is not None and _declares(n.value, names):
                for t in (n.targets if isinstance(n, ast.Assign) else [n.target]):
                    for x in walk(t):
                        if isinstance(x, ast.Name):
                            names.add(x.id)
        if len(names) == before:
            break
    return names


def _declares(expr, names: set[str]) -> bool:
    return any(isinstance(x, ast.Attribute) and x.attr in DECLARED_ATTRS
               or isinstance(x, ast.Call) and dotted(x.func).split(".")[-1] in DECLARED_CALLS
               or isinstance(x, ast.Name) and x.id in names for x in walk(expr))


def _tail_constant(expr, fn) -> bool:
    """A path whose last component is a literal (``os.path.join(STATIC, "index.html")``,
    ``BASE / "logo.png"``): a file shipped with the app, not one a user stored."""
    if literal(expr) is not NOT_LITERAL:
        return True
    if isinstance(expr, ast.Call) and dotted(expr.func).split(".")[-1] in ("join", "joinpath", "Path", "str") \
            and expr.args:
        return _tail_constant(expr.args[-1], fn)
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Div):
        return _tail_constant(expr.right, fn)
    if isinstance(expr, ast.Name) and fn is not None:
        values = [n.value for n in of_type(fn, ast.Assign) if n.value is not None
                  and any(isinstance(t, ast.Name) and t.id == expr.id for t in n.targets)]
        return bool(values) and all(_tail_constant(v, None) for v in values)
    return False


RESPONSES = ("Response", "StreamingResponse", "FileResponse")
_UNSET = object()


def _served_back(ctx, proj: Project, upload_closures) -> list[str]:
    """Where the app hands stored files back to a browser (how, file:line), [] if nowhere:
    a ``FileResponse`` of a path whose name is not a literal, a response whose
    ``media_type`` comes from data (the stored type), a presigned GET URL, a public ACL /
    ``make_public()``, or ``StaticFiles`` mounted on a directory an upload handler names.
    A ``StaticFiles`` subclass serving its own directory, shipped pages (a literal file
    name) and relayed responses without a stored type (a reverse proxy) do not count."""
    upload_names = {x.id for _s, f in upload_closures for x in walk(f) if isinstance(x, ast.Name)}
    upload_strings = {x.value for _s, f in upload_closures for x in walk(f)
                      if isinstance(x, ast.Constant) and isinstance(x.value, str) and len(x.value) > 1}
    out: list[str] = []
    for src in proj.files:
        if not ctx.layout.is_app(src.path) or src.tree is None:
            continue
        up = None
        for n in of_type(src.tree, ast.Call):
            name = dotted(n.func)
            last = name.rsplit(".", 1)[-1] if name else (n.func.attr if isinstance(n.func, ast.Attribute) else "")
            kw = {k.arg: k.value for k in n.keywords if k.arg}
            if last in RESPONSES:
                media = kw.get("media_type")
                if media is not None and literal(media) is NOT_LITERAL:
                    out.append(f"`{last}` at {src.path}:{n.lineno} sends a stored media type")
                if last == "FileResponse":
                    path = n.args[0] if n.args else kw.get("path")
                    up = up or parent_map(src.tree)
                    fn, cls = _enclosing_def(n, up)
                    if cls is not None and any("StaticFiles" in dotted(b) for b in cls.bases):
                        continue
                    if media is None and path is not None and not _tail_constant(path, fn):
                        out.append(f"`FileResponse` at {src.path}:{n.lineno} serves stored files")
            elif last in ("generate_presigned_url", "make_public"):
                method = literal(n.args[0]) if n.args else literal(kw.get("ClientMethod", ast.Constant(None)))
                if last == "make_public" or method in ("get_object", NOT_LITERAL):
                    out.append(f"`{last}` at {src.path}:{n.lineno} hands stored objects out")
            elif last == "StaticFiles":
                d = kw.get("directory") or (n.args[0] if n.args else None)
                if d is None:
                    continue
                value = literal(d)
                if isinstance(d, ast.Name) and d.id in upload_names or isinstance(value, str) and value in upload_strings:
                    out.append(f"`StaticFiles` at {src.path}:{n.lineno} serves the upload directory")
        for c in of_type(src.tree, ast.Constant):
            if c.value in ("public-read", "public-read-write"):
                out.append(f"objects are stored {c.value} ({src.path}:{c.lineno})")
    return out


def _enclosing_def(node, up):
    """(function, class) enclosing ``node``."""
    fn = cls = None
    p = up.get(id(node))
    while p is not None:
        if fn is None and isinstance(p, (ast.FunctionDef, ast.AsyncFunctionDef)):
            fn = p
        if isinstance(p, ast.ClassDef):
            cls = p
            break
        p = up.get(id(p))
    return fn, cls


@check("SEC-050", "security", "File upload and storage safety")
def file_uploads(ctx):
    """Upload handlers (routes with an ``UploadFile`` parameter) and the functions they
    call (imports resolved): a size limit (a comparison on a size/length/``len()`` or a
    ``MAX_*_SIZE`` setting), the type checked from the content (python-magic, filetype,
    imghdr, ``PIL.Image.open``/``verify``), not only from the client's ``content_type`` or
    the extension; the client's ``filename`` kept out of filesystem paths and object keys
    unless sanitised (``secure_filename``, ``os.path.basename``, ``Path(x).name``, uuid
    names). Every route: string path/query parameters reaching ``open`` / ``Path`` /
    ``os.path.join`` / ``FileResponse`` without sanitising or an ``is_relative_to`` /
    ``commonpath`` guard. Storage: ``ACL="public-read"`` or ``make_public()``, and
    presigned URLs' ``ExpiresIn``.

    Why: a client file name such as ``../../app/main.py`` written to disk is an arbitrary
    file write (BLOCKER), as is a path parameter opened unchecked (file disclosure,
    BLOCKER); a client file name as object key lets users overwrite others' objects
    (WARNING); an unbounded upload exhausts memory/disk and a spoofed content type
    stores HTML/SVG served from your domain (WARNING each; the type finding only when
    the app hands stored files back to browsers: a ``FileResponse`` of a stored path, a
    response whose ``media_type`` comes from data, presigned GET URLs, public ACLs, a
    ``StaticFiles`` mount of a directory an upload handler names; the message says
    where); public-read objects expose
    customers' photos to anyone with the URL (WARNING); presigned links valid over a
    day (RECOMMENDATION).
    Not flagged: ``generate_presigned_url`` without ``ExpiresIn`` (botocore's default is
    3600 s, reported as INFO); sanitised or guarded paths (``is_relative_to``,
    ``commonpath``, ``resolve()``/``realpath`` compared with ``startswith``); server-side
    values: the result of a lookup keyed by a parameter (``doc = await get_document(doc_id)``
    then ``ROOT / doc.stored_name``) does not carry the parameter's text (only string and
    path builders such as ``str``, ``Path``, ``join``, ``format`` do), nor do
    ``Path(name).suffix``/``.stem``/``.name`` and ``os.path.splitext(name)[1]``; paths the
    server generates under its storage root (``BASE / uuid4().hex``); the content type of
    uploads the app only parses or keeps server-side (an imported JSON file, an archive
    fetched by workers): nothing serves them to a browser (shipped pages with a literal
    file name, ``StaticFiles`` of the app's own assets and relayed proxy responses do not
    count as serving uploads). A type checked through locals (``media_type =
    file.content_type...; if media_type not in ALLOWED``) is reported as declared-only.
    A handler served at several paths (a router included twice) is reported once, with
    every route.
    """
    chk = file_uploads.check
    proj = Project.of(ctx)
    seen: set[tuple[str, int]] = set()

    def once(file, line):
        if (file, line) in seen:
            return False
        seen.add((file, line))
        return True

    handlers: dict[int, list] = {}  # one handler served at several paths (included twice) is one defect
    for route in source_routes(ctx):
        handlers.setdefault(id(route.node), []).append(route)
    upload_closures = []  # every upload handler and its callees: where uploads are written
    for group in handlers.values():
        fn, src = group[0].node, ctx.index.get(group[0].file)
        if fn is not None and src is not None and _upload_params(fn):
            upload_closures += callees_upto(proj, src, fn)
    served = _UNSET  # where stored files are handed back to browsers (computed once, when needed)
    for group in handlers.values():
        group.sort(key=lambda r: not r.include_in_schema)  # name it by its documented path
        route, ref = group[0], [d for r in group for d in r.as_dicts()]
        fn, src = route.node, ctx.index.get(route.file)
        if fn is None or src is None:
            continue
        uploads = _upload_params(fn)
        closure = callees_upto(proj, src, fn) if uploads else [(src, fn)]
        for csrc, cfn in closure:
            params = _path_params(route) if cfn is fn else set()
            up = {a for a in _upload_params(cfn)} | (uploads if cfn is fn else set())
            tainted = _taint(cfn, params, "filename" if up or uploads else None)
            if not tainted and not up and not uploads:
                continue
            if _confined(cfn):
                continue
            for kind, node in _sinks(proj, csrc, cfn, tainted, "filename" if up or uploads else None):
                if not once(csrc.path, node.lineno) or not once(kind, id(cfn)):
                    continue
                if kind == "fs":
                    yield chk.finding(ctx, Severity.BLOCKER, "Client-controlled path reaches the filesystem",
                                      f"`{cfn.name}` builds a filesystem path from a client-supplied file name or "
                                      "parameter without sanitising it: `../` sequences read or overwrite files "
                                      "outside the upload directory (path traversal).",
                                      "Store under a generated name (`uuid4().hex` + a whitelisted extension); for "
                                      "downloads resolve the path and check `path.resolve().is_relative_to(BASE)`.",
                                      csrc.path, node.lineno, key=f"fs:{cfn.name}",
                                      routes=ref)
                else:
                    yield chk.finding(ctx, Severity.WARNING, "Object key built from the client's file name",
                                      f"`{cfn.name}` uses the uploaded file's name in the storage key: users can "
                                      "overwrite each other's objects and choose arbitrary key prefixes.",
                                      "Generate keys server-side (`{org_id}/{uuid4().hex}.{ext}`) and keep the "
                                      "original name only as metadata.", csrc.path, node.lineno, key=f"key:{cfn.name}",
                                      routes=ref)
        if not uploads:
            continue
        compares = [(s, n) for s, f in closure for n in of_type(f, ast.Compare)]
        sized = any(any(
            (isinstance(x, ast.Call) and dotted(x.func) == "len") or
            (isinstance(x, (ast.Name, ast.Attribute)) and SIZE_NAME.search(dotted(x)))
            for x in walk(n)) for _s, n in compares)
        sniffed = any(CONTENT_SNIFF.match(proj.qualify(s, n.func)) for s, f in closure for n in of_type(f, ast.Call))
        declared_names = {id(f): _declared_names(f) for _s, f in closure}
        declared = next(((s, n) for s, f in closure for n in of_type(f, ast.Compare) if any(
            isinstance(x, ast.Attribute) and x.attr in ("content_type", "suffix") or
            isinstance(x, ast.Call) and dotted(x.func).split(".")[-1] in ("endswith", "splitext") or
            isinstance(x, ast.Name) and x.id in declared_names[id(f)]
            for x in walk(n))), None)
        if not sized:
            yield chk.finding(ctx, Severity.WARNING, f"Upload {route.path} has no size limit",
                              f"`{fn.name}` and its callees never compare the upload's size: Starlette accepts "
                              "any size (spooling to disk) and `await file.read()` loads it all into memory.",
                              "Reject bodies above MAX_UPLOAD_SIZE_MB (check `file.size` / read in chunks and "
                              "stop past the limit) and cap request size at the proxy too.",
                              route.file, route.line, key="size", routes=ref)
        if served is _UNSET:
            served = _served_back(ctx, proj, upload_closures)
        if not sniffed and served:
            file, line = (declared[0].path, declared[1].lineno) if declared else (route.file, route.line)
            yield chk.finding(ctx, Severity.WARNING, f"Upload {route.path}: type not verified from the content",
                              ("The type is checked only from the client's declaration (content type or "
                               "extension), which the client chooses freely" if declared else
                               "No type check was found") + ": HTML/SVG/executables can be stored and served "
                              f"back from your domain ({'; '.join(served[:2])}).",
                              "Sniff the bytes (python-magic `from_buffer`, `filetype.guess`, or "
                              "`PIL.Image.open(...).verify()` for images) against an allow-list.",
                              file, line, key="mime", routes=ref)
    for src in proj.files:
        if not ctx.layout.is_app(src.path):
            continue
        hits = [n for n in of_type(src.tree, ast.Constant) if n.value in ("public-read", "public-read-write")]
        hits += [n for n in of_type(src.tree, ast.Call) if isinstance(n.func, ast.Attribute) and n.func.attr in (
            "make_public", "generate_presigned_url", "generate_presigned_post")]
        hits.sort(key=lambda n: flat(n)[1])  # source order
        for n in hits:
            if isinstance(n, ast.Constant):
                yield chk.finding(ctx, Severity.WARNING, f"Objects stored with ACL {n.value}",
                                  "Objects uploaded with a public ACL are readable by anyone who has or guesses "
                                  "the URL: customer photos and documents leak.",
                                  "Keep the bucket private (Block Public Access on) and hand out short-lived "
                                  "presigned GET URLs.", src.path, n.lineno, key=f"acl:{n.value}")
            elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "make_public":
                yield chk.finding(ctx, Severity.WARNING, "Blob made public",
                                  "`make_public()` exposes the object to anyone with its URL.",
                                  "Serve signed URLs with a short expiration instead.", src.path, n.lineno,
                                  key="make-public")
            elif isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) \
                    and n.func.attr in ("generate_presigned_url", "generate_presigned_post"):
                exp = next((k.value for k in n.keywords if k.arg == "ExpiresIn"), None)
                value = literal(exp) if exp is not None else 3600
                if isinstance(value, (int, float)) and value > LONG_LINK_S:
                    yield chk.finding(ctx, Severity.RECOMMENDATION, f"Presigned URL valid for {int(value)} s",
                                      "A presigned link valid for more than a day keeps working after it is "
                                      "forwarded, logged or leaked.",
                                      "Use minutes to an hour (`ExpiresIn=900`) and re-issue links on demand.",
                                      src.path, n.lineno, key="expires")
                else:
                    yield chk.finding(ctx, Severity.INFO, "Presigned URL expiry: "
                                      + (f"{value} s" if exp is not None and value is not literal(None)
                                         else "botocore default 3600 s" if exp is None else "from configuration"),
                                      "Presigned URLs expire.", "", src.path, n.lineno, key="expires")

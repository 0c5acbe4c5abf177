"""SEC-003: passwords hashed with a fast hash instead of a password hashing function."""
from __future__ import annotations

import ast
import re

from ..findings import Severity
from ..code.pyast import dotted, literal, of_type
from ..code.pyresolve import Project, callers, import_map, qualify
from . import check

PASSWORD_WORD = re.compile(r"passw(or)?d|passwd|pwd|passphrase", re.IGNORECASE)
# password-related names that hold something else: reset tokens and codes (random, high
# entropy: a fast hash is right for them), existing hashes, salts, policies
NOT_PASSWORD = re.compile(r"token|reset|code|otp|nonce|link|url|hash|salt|length|policy|expir|fingerprint|cache"
                          r"|etag|api_?key|lookup", re.IGNORECASE)


# in a function's name: ``hash_password_reset_token``, ``hash_api_key`` hash something else
NOT_PASSWORD_DATA = re.compile(r"token|reset|code|otp|nonce|fingerprint|cache|etag|api_?key|lookup", re.IGNORECASE)


def is_password_name(name: str) -> bool:
    """A name for password data; UPPER_CASE constants (``_PASSWORD_OPTIONS``, ``MIN_PASSWORD``)
    name configuration about passwords, not a password."""
    if name.lstrip("_").isupper():
        return False
    return bool(PASSWORD_WORD.search(name)) and not NOT_PASSWORD.search(name)


HASHER_NAME = re.compile(r"(hash|digest|encrypt|encode|verify|check|make|set)_?(pass|pwd)|pass\w*_hash|pw_hash", re.IGNORECASE)
FAST = {f"hashlib.{n}" for n in ("md5", "sha1", "sha224", "sha256", "sha384", "sha512", "sha3_224", "sha3_256",
                                  "sha3_384", "sha3_512", "blake2b", "blake2s", "new")} | {"hmac.new", "hmac.digest"}
GOOD = {"bcrypt.hashpw": "bcrypt", "bcrypt.checkpw": "bcrypt", "argon2.PasswordHasher": "argon2",
        "passlib.context.CryptContext": "passlib", "pwdlib.PasswordHash": "pwdlib",
        "werkzeug.security.generate_password_hash": "werkzeug (pbkdf2/scrypt)", "hashlib.scrypt": "scrypt",
        "hashlib.pbkdf2_hmac": "PBKDF2", "django.contrib.auth.hashers.make_password": "django hashers"}
WEAK_PASSLIB = {"plaintext", "md5_crypt", "des_crypt", "bsdi_crypt", "hex_md5", "hex_sha1", "hex_sha256",
                "hex_sha512", "ldap_md5", "ldap_sha1", "ldap_plaintext", "unix_disabled", "mysql323", "mysql41"}
MIN_PBKDF2_ITERATIONS = 100_000


def _tainted_names(fn, seed) -> set[str]:
    """Local names holding password data: ``seed`` parameters and what is assigned from them."""
    names = set(seed)
    changed = True
    while changed:
        changed = False
        for n in of_type(fn, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            if n.value is not None:
                targets = n.targets if isinstance(n, ast.Assign) else [n.target]
                if _mentions(n.value, names):
                    for t in targets:
                        if isinstance(t, ast.Name) and t.id not in names:
                            names.add(t.id)
                            changed = True
    return names


def _mentions(node, names, by_name=True) -> bool:
    for n in of_type(node, (ast.Name, ast.Attribute) if by_name else ast.Name):
        if isinstance(n, ast.Name):
            if n.id in names or by_name and is_password_name(n.id):
                return True
        elif is_password_name(n.attr):
            return True
    return False


# generators of high-entropy random values: a "password" the server generates from them
# (an app password, an API secret) cannot be guessed from a dictionary, a fast hash is fine
RANDOM = {"secrets.token_urlsafe", "secrets.token_hex", "secrets.token_bytes", "os.urandom",
          "uuid.uuid4", "secrets.choice"}
# methods of a password hashing object (``PasswordHasher().hash``, ``CryptContext.hash``,
# ``PasswordHash.hash``) and functions that hash with a slow scheme
SLOW_METHODS = {"hash", "hashpw", "encrypt", "make_password", "generate_password_hash"}


def _random_names(fn, imports) -> set[str]:
    """Local names assigned from a random generator (``pw = secrets.token_urlsafe(32)``)."""
    out = set()
    for n in of_type(fn, ast.Assign):
        if isinstance(n.value, ast.Call) and any(qualify(c.func, imports) in RANDOM for c in of_type(n.value, ast.Call)):
            out |= {t.id for t in n.targets if isinstance(t, ast.Name)}
    return out


def _slow_objects(tree, imports) -> set[str]:
    """Names (and ``self.x`` attributes) bound to a password hashing object in a module."""
    out = set()
    for n in of_type(tree, (ast.Assign, ast.AnnAssign)):
        if isinstance(n.value, ast.Call) and qualify(n.value.func, imports) in GOOD:
            targets = n.targets if isinstance(n, ast.Assign) else [n.target]
            out |= {dotted(t) for t in targets if dotted(t)}
    return out


def _slow_call(call: ast.Call, imports, objects: set[str]) -> bool:
    """A call that hashes with a slow scheme: a GOOD function, or ``.hash(...)`` on an
    object built from a GOOD constructor (``ph.hash(pw)``, ``self.password_hash.hash(pw)``)."""
    q = qualify(call.func, imports)
    if q in GOOD and not q.endswith(("checkpw", "PasswordHasher", "CryptContext", "PasswordHash")):
        return True
    if isinstance(call.func, ast.Attribute) and call.func.attr in SLOW_METHODS:
        recv = dotted(call.func.value)
        return recv in objects or any(recv.endswith("." + o.rsplit(".", 1)[-1]) for o in objects) \
            or qualify(call.func.value, imports) in GOOD
    return False


def _verifies(fn) -> bool:
    """The function compares a digest: ``==`` / ``!=`` or ``compare_digest``."""
    return any(isinstance(op, (ast.Eq, ast.NotEq)) for c in of_type(fn, ast.Compare) for op in c.ops) \
        or any(dotted(c.func).endswith("compare_digest") for c in of_type(fn, ast.Call))


def _hashed_arg(call: ast.Call, q: str):
    if q.startswith("hmac."):
        return call.args[1] if len(call.args) > 1 else next((k.value for k in call.keywords if k.arg == "msg"), None)
    if q == "hashlib.new":
        return call.args[1] if len(call.args) > 1 else None
    return call.args[0] if call.args else None


@check("SEC-003", "security", "Password hashing")
def password_hashing(ctx):
    """Password data (parameters, variables and attributes named password/passwd/pwd,
    and what is assigned from them in the function) reaching a fast hash:
    ``hashlib.md5/sha1/sha256/...``, ``hashlib.new(...)``, ``h.update(password)``,
    ``hmac.new(key, password, ...)``, directly or through a project helper whose parameter
    flows into such a hash (calls resolved through imports, one level); and any fast hash
    inside a function named like a password hasher (``hash_password(raw)``).

    Why: SHA-256/MD5 run billions of times per second on a GPU; a leaked table of
    fast-hashed (even salted) passwords is cracked in hours. Password hashing needs a
    slow, salted KDF: argon2, bcrypt, scrypt (passlib/pwdlib wrap them).
    Severity: BLOCKER for a fast hash of a password; RECOMMENDATION (finish the migration)
    when the fast hash only verifies legacy hashes: the function compares the digest and it,
    or a function calling it, hashes the password again with argon2/bcrypt/scrypt (a slow
    library call, ``ph.hash(pw)`` on a hasher object, or a project function doing so);
    WARNING for PBKDF2 with fewer than
    100 000 iterations and for a passlib ``CryptContext`` whose schemes are all weak
    (plaintext, md5_crypt, hex digests). The library in use is reported as INFO.
    Not flagged: SHA-256 of tokens, API keys (lookup hashes of high-entropy random keys),
    fingerprints, e-mail addresses, ETags, cache keys or file contents, also inside a
    function named like a password hasher; a "password" the code generates itself from
    ``secrets.token_*`` / ``os.urandom`` (high entropy);
    HMAC signing with a secret key (``hmac.new(key, body, sha256)``); constant-time
    comparison of a configured password (``secrets.compare_digest``).
    """
    chk = password_hashing.check
    project = Project.of(ctx)
    sources = [s for s in ctx.layout.app_sources(ctx.index) if s.tree is not None]
    reported: set[tuple[str, int]] = set()
    good: dict[str, tuple[str, int]] = {}
    # functions whose parameter i reaches a fast hash: id(def) -> (param index, hash call line, file, hash name)
    helpers: dict[int, tuple[int, int, str, str]] = {}
    helper_names: set[str] = set()
    slow_fns: set[int] = set()  # project functions that hash a password with a slow scheme
    for src in sources:
        if not any(lib.split(".")[0] in (src.text or "") for lib in GOOD):
            continue
        imports = {k: project.absolute(src, v) for k, v in import_map(src.tree).items()}
        objects = _slow_objects(src.tree, imports)
        for fn in of_type(src.tree, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if any(_slow_call(c, imports, objects) for c in of_type(fn, ast.Call)):
                slow_fns.add(id(fn))

    def rehashes(src, fn, imports) -> bool:
        """``fn`` (or a function that calls it) verifies a fast digest and hashes the password
        again with a slow scheme: a legacy-hash migration in progress."""
        for s, f in [(src, fn), *((r.src, r.func) for r in callers(project, fn))]:
            imp = imports if s is src else {k: project.absolute(s, v) for k, v in import_map(s.tree).items()}
            objects = _slow_objects(s.tree, imp)
            for c in of_type(f, ast.Call):
                if _slow_call(c, imp, objects):
                    return True
                target = project.resolve_call(s, c.func)
                if target is not None and id(target.func) in slow_fns:
                    return True
        return False

    for src in sources:
        imports = {k: project.absolute(src, v) for k, v in import_map(src.tree).items()}
        hashes = "hashlib" in (src.text or "") or "hmac" in (src.text or "")
        for fn in of_type(src.tree, (ast.FunctionDef, ast.AsyncFunctionDef)) if hashes else ():
            fast = [(c, qualify(c.func, imports)) for c in of_type(fn, ast.Call)]
            objects = {t.id: q for st in of_type(fn, ast.Assign) if isinstance(st.value, ast.Call)
                       and not st.value.args and (q := qualify(st.value.func, imports)) in FAST
                       for t in st.targets if isinstance(t, ast.Name)}  # h = hashlib.sha256(); h.update(pw)
            fast = [(c, q) for c, q in fast if q in FAST or isinstance(c.func, ast.Attribute) and c.func.attr == "update"
                    and c.args and isinstance(c.func.value, ast.Name) and c.func.value.id in objects]
            if not fast:
                continue
            params = [a.arg for a in [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]]
            random = _random_names(fn, imports)
            pw = _tainted_names(fn, {p for p in params if is_password_name(p)}) - random
            hasher = bool(HASHER_NAME.search(fn.name)) and not NOT_PASSWORD_DATA.search(fn.name)
            flows = {p: _tainted_names(fn, {p}) for p in params if p not in ("self", "cls")}
            for call, q in fast:
                arg, name = (_hashed_arg(call, q), q) if q in FAST else (call.args[0], objects[call.func.value.id])
                if arg is None:
                    continue
                if _mentions(arg, random, by_name=False) or (not _mentions(arg, pw) and _non_password(arg)):
                    continue  # a random secret, or data named as something else (token, API key)
                if _mentions(arg, pw) or hasher:
                    if (src.path, call.lineno) not in reported:
                        reported.add((src.path, call.lineno))
                        yield _fast(ctx, chk, src.path, call.lineno, name,
                                    f"`{ast.unparse(arg)[:60]}` is password data" if _mentions(arg, pw)
                                    else f"`{fn.name}()` is a password hashing function",
                                    migration=_verifies(fn) and rehashes(src, fn, imports))
                    continue
                offset = 1 if params and params[0] in ("self", "cls") else 0
                for i, p in enumerate(params):
                    if p in flows and _mentions(arg, flows[p], by_name=False):
                        helpers.setdefault(id(fn), (i - offset, call.lineno, src.path, name))
                        helper_names.add(fn.name)
        if not any(lib.split(".")[0] in (src.text or "") for lib in GOOD):
            continue
        for call in of_type(src.tree, ast.Call):
            q = qualify(call.func, imports)
            if q in GOOD:
                good.setdefault(GOOD[q], (src.path, call.lineno))
                yield from _kdf_strength(ctx, chk, src, call, q)
    for src in sources:  # password data handed to a helper that fast-hashes its parameter
        if not helper_names or not any(h in (src.text or "") for h in helper_names):
            continue
        for fn in of_type(src.tree, (ast.FunctionDef, ast.AsyncFunctionDef)):
            calls = [c for c in of_type(fn, ast.Call) if c.args
                     and dotted(c.func).rsplit(".", 1)[-1] in helper_names]
            if not calls:
                continue
            params = [a.arg for a in [*fn.args.posonlyargs, *fn.args.args, *fn.args.kwonlyargs]]
            pw = _tainted_names(fn, {p for p in params if is_password_name(p)})
            for call in calls:
                target = project.resolve_call(src, call.func)
                info = helpers.get(id(target.func)) if target else None
                if not info or info[0] >= len(call.args) or not _mentions(call.args[info[0]], pw):
                    continue
                if (src.path, call.lineno) not in reported and (info[2], info[1]) not in reported:
                    reported.add((src.path, call.lineno))
                    imports = {k: project.absolute(src, v) for k, v in import_map(src.tree).items()}
                    yield _fast(ctx, chk, src.path, call.lineno, info[3],
                                f"the password goes to `{target.func.name}()`, which hashes it at {info[2]}:{info[1]}",
                                migration=_verifies(fn) and rehashes(src, fn, imports))
    for lib, (path, line) in good.items():
        yield chk.finding(ctx, Severity.INFO, f"Password hashing uses {lib}",
                          f"{lib} is a slow, salted password hashing scheme.", "", path, line, key=f"lib:{lib}")


def _non_password(arg) -> bool:
    """The hashed value is named as non-password data (``token``, ``api_key``,
    ``fingerprint``, ``cache_key``) and names no password."""
    methods = {id(c.func) for c in of_type(arg, ast.Call)}
    names = [n.id if isinstance(n, ast.Name) else n.attr for n in of_type(arg, (ast.Name, ast.Attribute))
             if id(n) not in methods]
    return bool(names) and all(NOT_PASSWORD.search(n) for n in names)


def _fast(ctx, chk, path, line, name, how, migration=False):
    algo = "HMAC" if name.startswith("hmac.") else name if name == "hashlib.new" else name.rsplit(".", 1)[-1]
    if migration:
        return chk.finding(
            ctx, Severity.RECOMMENDATION, f"Legacy {algo} password hashes still verified (migration in progress)",
            f"{how}, hashed with {name} to verify a legacy hash; the password is then hashed again with a "
            "slow scheme (argon2/bcrypt): a migration in progress. Accounts that have not logged in since "
            "keep a fast hash that a leaked table gives away quickly.",
            "Finish the migration: set a deadline, then force a password reset for the accounts still on "
            "the legacy hash and remove this code path.",
            path, line, key=f"legacy:{algo}")
    return chk.finding(
        ctx, Severity.BLOCKER, f"Password hashed with a fast hash ({algo})",
        f"{how}, hashed with {name}: a general-purpose hash that GPUs compute billions of times per "
        "second, so a leaked password table is cracked quickly, salt or not.",
        "Hash passwords with argon2id or bcrypt (`pwdlib`/`passlib` or `argon2-cffi`), verify with the "
        "library's constant-time `verify`, and re-hash existing hashes at next login.",
        path, line, key=f"fast:{algo}")


def _kdf_strength(ctx, chk, src, call, q):
    if q == "hashlib.pbkdf2_hmac":
        it = call.args[3] if len(call.args) > 3 else next((k.value for k in call.keywords if k.arg == "iterations"), None)
        n = literal(it)
        if isinstance(n, int) and n < MIN_PBKDF2_ITERATIONS:
            yield chk.finding(ctx, Severity.WARNING, f"PBKDF2 with only {n} iterations",
                              "OWASP recommends 600 000 iterations for PBKDF2-HMAC-SHA256; fewer make "
                              "cracking proportionally cheaper.", "Raise the iteration count or move to argon2id.",
                              src.path, call.lineno, key="pbkdf2")
    elif q == "passlib.context.CryptContext":
        schemes = literal(next((k.value for k in call.keywords if k.arg == "schemes"), None))
        if isinstance(schemes, (list, tuple)) and schemes and all(s in WEAK_PASSLIB for s in schemes):
            yield chk.finding(ctx, Severity.WARNING, "passlib CryptContext with weak schemes only",
                              f"schemes={list(schemes)} are not password hashing functions worth the name.",
                              "Use schemes=[\"argon2\", \"bcrypt\"] with deprecated=\"auto\".",
                              src.path, call.lineno, key="passlib")

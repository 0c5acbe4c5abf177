"""SEC-003: passwords hashed with a fast hash instead of a password hashing function."""
from __future__ import annotations

import ast
import re

from ..findings import Severity
from ..code.pyast import dotted, literal, of_type
from ..code.pyresolve import Project, import_map, qualify
from . import check

PASSWORD_WORD = re.compile(r"passw(or)?d|passwd|pwd|passphrase", re.IGNORECASE)
# password-related names that hold something else: reset tokens and codes (random, high
# entropy: a fast hash is right for them), existing hashes, salts, policies
NOT_PASSWORD = re.compile(r"token|reset|code|otp|nonce|link|url|hash|salt|length|policy|expir", re.IGNORECASE)


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
    Severity: BLOCKER for a fast hash of a password; WARNING for PBKDF2 with fewer than
    100 000 iterations and for a passlib ``CryptContext`` whose schemes are all weak
    (plaintext, md5_crypt, hex digests). The library in use is reported as INFO.
    Not flagged: SHA-256 of tokens, e-mail addresses, ETags, cache keys or file contents;
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
            pw = _tainted_names(fn, {p for p in params if is_password_name(p)})
            hasher = bool(HASHER_NAME.search(fn.name))
            flows = {p: _tainted_names(fn, {p}) for p in params if p not in ("self", "cls")}
            for call, q in fast:
                arg, name = (_hashed_arg(call, q), q) if q in FAST else (call.args[0], objects[call.func.value.id])
                if arg is None:
                    continue
                if _mentions(arg, pw) or hasher:
                    if (src.path, call.lineno) not in reported:
                        reported.add((src.path, call.lineno))
                        yield _fast(ctx, chk, src.path, call.lineno, name,
                                    f"`{ast.unparse(arg)[:60]}` is password data" if _mentions(arg, pw)
                                    else f"`{fn.name}()` is a password hashing function")
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
                    yield _fast(ctx, chk, src.path, call.lineno, info[3],
                                f"the password goes to `{target.func.name}()`, which hashes it at {info[2]}:{info[1]}")
    for lib, (path, line) in good.items():
        yield chk.finding(ctx, Severity.INFO, f"Password hashing uses {lib}",
                          f"{lib} is a slow, salted password hashing scheme.", "", path, line, key=f"lib:{lib}")


def _fast(ctx, chk, path, line, name, how):
    algo = "HMAC" if name.startswith("hmac.") else name if name == "hashlib.new" else name.rsplit(".", 1)[-1]
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

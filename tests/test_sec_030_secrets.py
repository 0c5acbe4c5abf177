"""SEC-030 beyond the fixture comparison (which ignores INFO): the severity of each
real-format value by where it sits, stand-ins staying silent, and one finding per
distinct value per file with every line as a location."""
from __future__ import annotations

from pathlib import Path

import pytest

from auditlib.checks import run_checks
from auditlib.checks.sec_030_committed_secrets import entropy, stand_in
from auditlib.target.context import AuditContext

CASES = Path(__file__).resolve().parent / "fixtures" / "checks" / "SEC-030"


def _findings(case, tmp_path):
    ctx = AuditContext.open(CASES / case, tmp_path)
    return {(f.severity.value, f.locations[0].file, f.locations[0].line): f
            for f in run_checks(ctx, ids=["SEC-030"], source="static") if f.check == "SEC-030"}


def test_documentation_examples_are_info_and_app_code_is_a_blocker(tmp_path):
    got = _findings("docs", tmp_path)
    assert sorted(got) == [("BLOCKER", "app/schemas.py", 14), ("INFO", "app/schemas.py", 6),
                           ("INFO", "app/schemas.py", 10), ("INFO", "docs/stripe.md", 5)]
    # the docstring and the examples=[...] hold the same value: one finding, both lines
    assert [loc.line for loc in got[("INFO", "app/schemas.py", 6)].locations] == [6, 8]


def test_private_keys_by_place(tmp_path):
    got = _findings("pem", tmp_path)
    assert {k: f.title for k, f in got.items()} == {
        ("BLOCKER", "deploy_key.pem", 2): "RSA private key block committed in deploy_key.pem",
        ("BLOCKER", "app/signing.py", 2): "Private key block committed in signing.py",
        ("RECOMMENDATION", "certs/localhost-key.pem", 2): "Local-development private key committed (localhost-key.pem)",
        ("INFO", "tests/keys.py", 6): "Private key block in test code or test fixtures (keys.py)",
        ("INFO", "docs/ssh.md", 6): "Elided OPENSSH private key block in ssh.md",
    }
    dev = got[("RECOMMENDATION", "certs/localhost-key.pem", 2)].message
    assert "its certificate certs/localhost.pem is beside it" in dev and "(localhost)" in dev


def test_one_finding_per_value_per_file(tmp_path):
    got = _findings("keys", tmp_path)
    live = got[("BLOCKER", "app/main.py", 11)]
    assert [loc.line for loc in live.locations] == [11, 17]
    assert all("FWdC4" not in loc.excerpt for loc in live.locations), "the value leaks into an excerpt"
    assert got[("WARNING", "app/main.py", 9)].title == "Stripe secret key committed in main.py"


def test_real_format_keys_in_tests_and_test_fixtures_are_info(tmp_path):
    got = _findings("in_tests", tmp_path)
    assert sorted(got) == [("INFO", "tests/fixtures/slack_event.json", 1), ("INFO", "tests/test_billing.py", 2),
                           ("INFO", "tests/test_billing.py", 3)]
    assert [loc.line for loc in got[("INFO", "tests/test_billing.py", 2)].locations] == [2, 8]


def test_stand_ins_are_silent_even_in_app_code(tmp_path):
    assert _findings("stand_ins", tmp_path) == {}


@pytest.mark.parametrize("name,value,why", [
    ("Slack token", "xoxb-test-1234567890", "not the provider's token structure"),
    ("Stripe webhook secret", "whsec_test_0000000000000000", "a placeholder word"),
    ("Stripe secret key", "sk_live_xxxxxxxxxxxxxxxxxxxxxxxx", "a placeholder word"),
    ("Stripe secret key", "sk_live_a1a1a1a1a1a1a1a1a1a1a1a1", "low entropy"),
    ("AWS access key id", "AKIAABCDEFGHIJKLMNOP", "a character sequence"),
    ("AWS access key id", "AKIAIOSFODNN7EXAMPLE", "a placeholder word"),
    ("Stripe secret key", "sk_live_FWdC4RWNDzELnJ5UJWqWn0Dy", ""),
    ("Slack token", "xoxb-614958248354-698866668490-BzSv79N1yKW6lwpgAk4SBEZZ", ""),
])
def test_stand_in(name, value, why):
    assert stand_in(name, value) == why


def test_entropy():
    assert entropy("aaaa") == 0 and entropy("ab") == 1 and entropy("") == 0

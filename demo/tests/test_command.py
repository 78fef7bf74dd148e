"""seed_demo's output is pinned: the same users and releases (name, version, state) in the
same order, and a second run creates nothing. Production settings have no seed_demo."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.management import call_command

ROOT = Path(__file__).resolve().parent.parent.parent

RELEASES = """\
  Checkout redesign 3.0.0: closed
  Gateway rate limiting 2.1.0: closed
  Payout scheduling 2.1.0: rolled_back
  Passkeys login 3.0.0: closed
  Crypto payments pilot 2.1.0: cancelled
  Ledger reconciliation v2 2.2.0: closed
  Notification templates 2.1.0: closed
  Profile export (GDPR) 2.1.0: closed
  Webhook retries 2.2.0: rolled_back
  3-D Secure 2 rollout 3.0.0: closed
  Search relevance tuning 2.0.1: closed
  Session hardening 3.1.0: closed
  Search index rebuild 2.1.0: cancelled
  MFA recovery codes 3.2.0: rolled_back
  Refund automation 3.1.0: deployed
  Gateway mTLS 2.2.0: deployed
  Currency rounding fix 2.2.1: deployed
  Apple Pay support 3.1.0: deploying
  Login throttling 3.2.1: deploying
  Notification preferences 2.3.0: approved
  Search autocomplete 2.2.0: approved
  Gateway HTTP/3 3.0.0: awaiting_approval
  Chargeback API 3.2.0: approved
  Account deletion flow 2.2.0: awaiting_approval
  Fraud scoring v3 4.0.0: in_progress
  Invoice PDFs 2.3.0: awaiting_approval
  SSO for partners (SAML) 4.0.0: cancelled
  Push notifications (iOS 19) 2.4.0: in_progress
  Saved cards 3.2.0: awaiting_approval
  OAuth scopes cleanup 4.1.0: in_progress
  Profile avatars 2.3.0: planned
  Search synonyms 2.2.1: in_progress
  Gateway canary routing 3.1.0: planned
  Legacy SMS provider removal 2.5.0: cancelled
  Multi-currency wallets 3.0.0: in_progress
  Express checkout 4.0.0: planned
  Email digest 2.6.0: draft
  Password policy update 4.2.0: planned
  Ledger archiving 3.1.0: draft
  Device trust 5.0.0: draft
"""

LOGINS = """\
Demo logins (password for all: releasegate-demo):
  admin   Ada Admin (administrator)
  rita    Rita Moreno (release_manager — Payments)
  ravi    Ravi Shankar (release_manager — Platform)
  ida     Ida Lindqvist (release_manager — Identity)
  quinn   Quinn Okafor (qa_lead)
  sam     Sam Novak (security_lead)
  omar    Omar Haddad (operations)
  paula   Paula Jensen (product_owner)
  carla   Carla Rossi (cab_member)
  chris   Chris Adeyemi (cab_chair, cab_member)
  stella  Stella Park (stakeholder)
"""


@pytest.mark.django_db
def test_seed_demo_prints_the_same_releases_and_logins_and_a_rerun_creates_nothing():
    first, second, quiet = io.StringIO(), io.StringIO(), io.StringIO()
    call_command("seed_demo", verbosity=2, stdout=first, no_color=True)
    assert first.getvalue() == (
        RELEASES + "Demo portfolio ready: 40 release(s) created, 0 already present.\n" + LOGINS
    )
    call_command("seed_demo", verbosity=2, stdout=second, no_color=True)
    assert second.getvalue() == (
        "Demo portfolio ready: 0 release(s) created, 40 already present.\n" + LOGINS
    )
    call_command("seed_demo", "--quiet-users", stdout=quiet, no_color=True)
    assert quiet.getvalue() == "Demo portfolio ready: 0 release(s) created, 40 already present.\n"


def test_production_settings_have_no_seed_demo():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "ALLOWED_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings.production",
        DJANGO_SECRET_KEY="k" * 20 + "x9!Q-" * 10,
        ALLOWED_HOSTS="releasegate.example.com",
        AUDIT_CHAIN_KEYS="k1:" + "a" * 44,
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "help", "--commands"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    commands = result.stdout.split()
    assert "seed_scale" in commands and "seed_demo" not in commands

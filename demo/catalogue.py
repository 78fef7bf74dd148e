"""The demo's teams, services and environments, keyed by natural keys (idempotent)."""

from __future__ import annotations

from releases.models import Environment, Service, Team

TEAMS = [("Payments", "payments"), ("Platform", "platform"), ("Identity", "identity")]

# name, team slug, criticality, description
SERVICES = [
    ("payments-api", "payments", "critical", "Card and wallet payments for every checkout."),
    ("checkout-web", "payments", "high", "The checkout front end."),
    ("ledger-service", "payments", "critical", "Double-entry ledger and reconciliation."),
    ("api-gateway", "platform", "critical", "Edge routing, authentication and rate limits."),
    ("notification-service", "platform", "medium", "E-mail, SMS and push notifications."),
    ("search-service", "platform", "low", "Catalogue and help-centre search."),
    ("auth-service", "identity", "critical", "Login, sessions, MFA and passkeys."),
    ("user-profile", "identity", "medium", "Profiles, preferences and data exports."),
]

# name, slug, order, is_production
# name, slug, order in the promotion path, production, soak minutes before the next one
ENVIRONMENTS = [
    ("dev", "dev", 1, False, 0),
    ("qa", "qa", 2, False, 0),
    ("staging", "staging", 3, False, 60),
    ("production", "production", 4, True, 0),
]

# Tracker key prefix per team, for scope items.
KEY_PREFIX = {"payments": "PAY", "platform": "PLAT", "identity": "IAM"}


def ensure_catalogue() -> dict[str, Team]:
    """Teams, services and environments; returns the teams by slug."""
    teams = {
        slug: Team.objects.get_or_create(slug=slug, defaults={"name": name})[0]
        for name, slug in TEAMS
    }
    for name, team, criticality, description in SERVICES:
        Service.objects.get_or_create(
            slug=name,
            defaults={
                "name": name,
                "team": teams[team],
                "criticality": criticality,
                "repository_url": f"https://git.example.com/{team}/{name}",
                "description": description,
            },
        )
    for name, slug, order, is_production, soak in ENVIRONMENTS:
        Environment.objects.get_or_create(
            slug=slug,
            defaults={
                "name": name,
                "order": order,
                "is_production": is_production,
                "soak_minutes": soak,
            },
        )
    return teams

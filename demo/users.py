"""The demo logins: one user per role, all with the documented password (README.md)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from core.roles import ALL_ROLES
from releases.models import Team

DEMO_PASSWORD = "releasegate-demo"

# username, first name, last name, roles, team slugs
DEMO_USERS: list[tuple[str, str, str, list[str], list[str]]] = [
    ("admin", "Ada", "Admin", ["administrator"], []),
    ("rita", "Rita", "Moreno", ["release_manager"], ["payments"]),
    ("ravi", "Ravi", "Shankar", ["release_manager"], ["platform"]),
    ("ida", "Ida", "Lindqvist", ["release_manager"], ["identity"]),
    ("quinn", "Quinn", "Okafor", ["qa_lead"], []),
    ("sam", "Sam", "Novak", ["security_lead"], []),
    ("omar", "Omar", "Haddad", ["operations"], []),
    ("paula", "Paula", "Jensen", ["product_owner"], []),
    ("carla", "Carla", "Rossi", ["cab_member"], []),
    ("chris", "Chris", "Adeyemi", ["cab_chair", "cab_member"], []),
    ("stella", "Stella", "Park", ["stakeholder"], []),
]

# The release manager who owns each team's releases.
TEAM_OWNER = {"payments": "rita", "platform": "ravi", "identity": "ida"}


def ensure_users(teams: dict[str, Team]) -> dict:
    """One group per role and the demo users in their groups and teams; returns the users
    by username. An existing user keeps its password."""
    for role in ALL_ROLES:
        Group.objects.get_or_create(name=role)
    user_model = get_user_model()
    users = {}
    for username, first, last, roles, team_slugs in DEMO_USERS:
        user, created = user_model.objects.get_or_create(
            username=username,
            defaults={
                "first_name": first,
                "last_name": last,
                "email": f"{username}@example.com",
                "is_staff": username == "admin",
                "is_superuser": username == "admin",
            },
        )
        if created:
            user.set_password(DEMO_PASSWORD)
            user.save(update_fields=["password"])
        user.groups.add(*Group.objects.filter(name__in=roles))
        for slug in team_slugs:
            teams[slug].members.add(user)
        users[username] = user
    return users


def demo_logins() -> str:
    """The logins as seed_demo and ``make run``'s banner print them."""
    lines = [f"Demo logins (password for all: {DEMO_PASSWORD}):"]
    for username, first, last, roles, teams in DEMO_USERS:
        what = ", ".join(roles) + (f" — {', '.join(t.title() for t in teams)}" if teams else "")
        lines.append(f"  {username:<7} {first} {last} ({what})")
    return "\n".join(lines)

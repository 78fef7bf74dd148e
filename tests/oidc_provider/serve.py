"""Run the test OpenID provider, or change a user's groups in its database.

    OIDC_PROVIDER_DB=/tmp/idp.sqlite3 OIDC_RSA_PRIVATE_KEY="$(cat key.pem)" \\
      python -m tests.oidc_provider.serve serve --port 18181 --client-id rg \\
        --client-secret s3cret \\
        --redirect-uri http://127.0.0.1:18180/accounts/oidc/sso/login/callback/ \\
        --user alice:idp-password:alice@example.com:rg-approvers,rg-payments

    python -m tests.oidc_provider.serve set-groups alice rg-payments

``serve`` creates the database, the confidential client (authorization code + PKCE, RS256,
no consent screen) and the users, then serves on 127.0.0.1 until it is terminated.
"""

from __future__ import annotations

import argparse
import os
import sys


def _setup():
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.oidc_provider.settings")
    import django

    django.setup()


def _set_groups(username: str, groups: list[str]) -> None:
    from django.contrib.auth.models import Group, User

    user = User.objects.get(username=username)
    user.groups.set([Group.objects.get_or_create(name=name)[0] for name in groups])


def serve(args) -> None:
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.core.servers.basehttp import WSGIServer, run
    from django.core.wsgi import get_wsgi_application
    from oauth2_provider.models import Application

    call_command("migrate", verbosity=0, interactive=False)
    Application.objects.update_or_create(
        client_id=args.client_id,
        defaults={
            "name": "Releasegate",
            "client_secret": args.client_secret,
            "client_type": Application.CLIENT_CONFIDENTIAL,
            "authorization_grant_type": Application.GRANT_AUTHORIZATION_CODE,
            "redirect_uris": args.redirect_uri,
            "algorithm": Application.RS256_ALGORITHM,
            "skip_authorization": True,
        },
    )
    for spec in args.user:
        username, password, email, groups = spec.split(":", 3)
        user, _ = User.objects.get_or_create(username=username, defaults={"email": email})
        user.set_password(password)
        user.save()
        _set_groups(username, [g for g in groups.split(",") if g])
    print(f"test OpenID provider on http://127.0.0.1:{args.port}/o", flush=True)
    run("127.0.0.1", args.port, get_wsgi_application(), threading=True, server_cls=WSGIServer)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="tests.oidc_provider.serve")
    commands = parser.add_subparsers(dest="command", required=True)
    serve_cmd = commands.add_parser("serve")
    serve_cmd.add_argument("--port", type=int, required=True)
    serve_cmd.add_argument("--client-id", required=True)
    serve_cmd.add_argument("--client-secret", required=True)
    serve_cmd.add_argument("--redirect-uri", required=True)
    serve_cmd.add_argument("--user", action="append", default=[], help="name:password:email:g1,g2")
    groups_cmd = commands.add_parser("set-groups")
    groups_cmd.add_argument("username")
    groups_cmd.add_argument("groups", nargs="*")
    args = parser.parse_args(argv)
    _setup()
    if args.command == "serve":
        serve(args)
    else:
        _set_groups(args.username, args.groups)


if __name__ == "__main__":
    main(sys.argv[1:])

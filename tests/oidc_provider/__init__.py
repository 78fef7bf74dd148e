"""A small OpenID provider for the single sign-on tests: django-oauth-toolkit's OIDC
provider in a Django project of its own, run as a separate process on a loopback port by
the test (``python -m tests.oidc_provider.serve``). Not part of Releasegate."""

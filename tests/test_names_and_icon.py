"""The admin speaks English: no "Rollback policys" or "Webhook deliverys" in its menus."""

import re

from django.apps import apps

PROJECT_APPS = {"core", "releases", "governance", "pipelines", "dashboards", "demo"}
NAIVE_PLURAL = re.compile(r"([^aeiou]ys|ss|shs|chs|xs|notess)$")


def test_every_model_has_a_real_plural():
    wrong = [
        f"{model._meta.label}: {model._meta.verbose_name_plural}"
        for model in apps.get_models()
        if model._meta.app_label in PROJECT_APPS
        and NAIVE_PLURAL.search(str(model._meta.verbose_name_plural))
    ]
    assert wrong == []


def test_pages_and_the_admin_have_an_icon(client, django_user_model):
    user = django_user_model.objects.create_user("iconic", password="x-long-password-1")
    client.force_login(user)
    page = client.get("/").content.decode()
    assert 'rel="icon" href="/static/favicon.svg"' in page
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/favicon.svg"

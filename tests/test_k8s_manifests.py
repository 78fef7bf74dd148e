"""The Kubernetes manifests (deploy/k8s/) render, validate against the Kubernetes schemas and
keep the rules docs/kubernetes.md promises.

Both overlays are rendered with `kubectl kustomize` (kustomize v5, built into kubectl 1.27+)
and every object is validated with kubernetes-validate in strict mode (an unknown field is an
error, as `kubectl apply --validate=strict` would say). Without a kubectl new enough the tests
skip and say why: Debian's own `kubernetes-client` is 1.20, whose kustomize cannot render
these files; .ci/run installs kubectl where a package source offers it.
"""

from __future__ import annotations

import base64
import os
import re
import secrets
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ("staging", "production")
# The newest Kubernetes the kubectl here (1.32) speaks; kubernetes-validate ships its schemas.
KUBERNETES_VERSION = "1.32.0"
SECRET_NAME = "releasegate-secrets"
SECRET_SETTINGS = {
    "DJANGO_SECRET_KEY",
    "DATABASE_URL",
    "DATABASE_OWNER_URL",
    "REDIS_URL",
    "AUDIT_CHAIN_KEYS",
    "METRICS_TOKEN",  # optional: /metrics stays off (404) without it
}
POD_OWNERS = {"Deployment", "Job"}


@cache
def _kubectl_problem() -> str | None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return "kubectl is not installed: the manifests cannot be rendered (see .ci/run)"
    version = subprocess.run(
        [kubectl, "version", "--client"], capture_output=True, text=True, timeout=60
    )
    match = re.search(r"Kustomize Version: v(\d+)", version.stdout)
    if version.returncode != 0 or not match or int(match.group(1)) < 5:
        return f"kubectl without kustomize v5 ({version.stdout.strip() or version.stderr.strip()})"
    return None


@cache
def _render(overlay: str) -> tuple[dict, ...]:
    problem = _kubectl_problem()
    if problem:
        pytest.skip(problem)
    result = subprocess.run(
        ["kubectl", "kustomize", str(K8S / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return tuple(doc for doc in yaml.safe_load_all(result.stdout) if doc)


@pytest.fixture(params=OVERLAYS)
def objects(request) -> tuple[dict, ...]:
    return _render(request.param)


def _one(objects, kind: str, name: str) -> dict:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{kind}/{name}: {len(found)} objects"
    return found[0]


def _pod_specs(objects):
    for obj in objects:
        if obj["kind"] in POD_OWNERS:
            yield obj, obj["spec"]["template"]["spec"]


def _containers(pod_spec):
    return [*pod_spec.get("initContainers", []), *pod_spec["containers"]]


def test_every_object_validates_against_the_kubernetes_schema_in_strict_mode(objects):
    assert {o["kind"] for o in objects} >= {
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "Ingress",
        "Job",
        "NetworkPolicy",
        "PodDisruptionBudget",
        "Service",
        "ServiceAccount",
    }
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_strict_validation_catches_a_misspelt_field():
    """The validator is not a rubber stamp: one unknown field fails it."""
    deployment = _one(_render("staging"), "Deployment", "releasegate-web")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_the_example_secret_validates_and_holds_placeholders_only():
    docs = [d for d in yaml.safe_load_all((K8S / "secrets.example.yaml").read_text()) if d]
    assert len(docs) == 1
    secret = docs[0]
    kubernetes_validate.validate(secret, KUBERNETES_VERSION, strict=True)
    assert secret["metadata"]["name"] == SECRET_NAME
    assert set(secret["stringData"]) == SECRET_SETTINGS
    for key, value in secret["stringData"].items():
        assert "change-me" in value, f"{key} looks like a real secret"


def test_every_container_has_requests_and_limits(objects):
    for owner, pod in _pod_specs(objects):
        for container in _containers(pod):
            resources = container.get("resources", {})
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(resources.get(part, {})), (
                    f"{owner['metadata']['name']}/{container['name']} has no {part}"
                )


def test_every_pod_runs_non_root_on_a_read_only_root_filesystem(objects):
    for owner, pod in _pod_specs(objects):
        name = owner["metadata"]["name"]
        pod_security = pod["securityContext"]
        assert pod_security["runAsNonRoot"] is True, name
        assert pod_security["runAsUser"] != 0, name
        assert pod_security["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["automountServiceAccountToken"] is False, name
        empty_dirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
        for container in _containers(pod):
            where = f"{name}/{container['name']}"
            security = container["securityContext"]
            assert security["runAsNonRoot"] is True, where
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security.get("privileged", False) is False, where
            assert security["capabilities"] == {"drop": ["ALL"]}, where
            assert security["seccompProfile"] == {"type": "RuntimeDefault"}, where
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            # The only writable places: /tmp and the settings' var directory, both emptyDirs.
            assert set(mounts) == {"/tmp", "/app/var"}, where
            assert set(mounts.values()) <= empty_dirs, where


def test_web_has_its_probes_an_hpa_and_a_disruption_budget(objects):
    web = _one(objects, "Deployment", "releasegate-web")
    assert "replicas" not in web["spec"], "the HPA owns the replica count"
    assert web["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    container = web["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == [
        "gunicorn",
        "-c",
        "deploy/gunicorn.conf.py",
        "config.wsgi:application",
    ]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz/"
    assert container["startupProbe"]["httpGet"]["path"] == "/healthz/"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz/"
    config = _config(objects)
    allowed_hosts = config["data"]["ALLOWED_HOSTS"].split(",")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        headers = {h["name"]: h["value"] for h in container[probe]["httpGet"]["httpHeaders"]}
        assert headers["Host"] in allowed_hosts, f"{probe}: Django would answer 400"
        assert headers["X-Forwarded-Proto"] == "https", f"{probe}: SECURE_SSL_REDIRECT"

    hpa = _one(objects, "HorizontalPodAutoscaler", "releasegate-web")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "releasegate-web"
    assert 1 <= hpa["spec"]["minReplicas"] < hpa["spec"]["maxReplicas"]
    for name, component in (("releasegate-web", "web"), ("releasegate-worker", "worker")):
        pdb = _one(objects, "PodDisruptionBudget", name)
        assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == component
        deployment = _one(objects, "Deployment", name)
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_beat_is_one_replica_that_is_never_doubled_by_a_rollout(objects):
    beat = _one(objects, "Deployment", "releasegate-beat")
    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert beat["spec"]["template"]["spec"]["containers"][0]["command"][:4] == [
        "celery",
        "-A",
        "config",
        "beat",
    ]
    assert not [h for h in objects if h["kind"] == "HorizontalPodAutoscaler"
                and h["spec"]["scaleTargetRef"]["name"] == "releasegate-beat"]  # fmt: skip


def test_deployments_wait_for_the_migration_job(objects):
    job = _one(objects, "Job", "releasegate-migrate")
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert "manage.py migrate --noinput" in " ".join(container["command"])
    assert "grant_app_role" in " ".join(container["command"])
    env = {e["name"]: e for e in container["env"]}
    assert env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "DATABASE_OWNER_URL"
    assert "lock_timeout=" in env["PGOPTIONS"]["value"]  # fail fast rather than queue
    assert job["metadata"]["labels"]["releasegate.io/phase"] == "migrate"
    # What the Job needs is applied with it, in the first step of a rollout.
    assert _config(objects)["metadata"]["labels"]["releasegate.io/phase"] == "migrate"
    assert (
        _one(objects, "ServiceAccount", "releasegate")["metadata"]["labels"]["releasegate.io/phase"]
        == "migrate"
    )
    for name in ("releasegate-web", "releasegate-worker", "releasegate-beat"):
        deployment = _one(objects, "Deployment", name)
        assert deployment["metadata"]["labels"].get("releasegate.io/phase") is None
        (init,) = deployment["spec"]["template"]["spec"]["initContainers"]
        assert "manage.py migrate --check" in " ".join(init["command"]), name
        # The app's own role checks: the init container must not hold the owner's URL.
        init_env = {e["name"]: e for e in init["env"]}
        assert init_env["DATABASE_URL"]["valueFrom"]["secretKeyRef"]["key"] == "DATABASE_URL"


def test_secrets_come_from_the_secret_and_settings_from_the_config_map(objects):
    config = _config(objects)
    assert not SECRET_SETTINGS & set(config["data"]), "a secret in the config map"
    assert config["data"]["DJANGO_SETTINGS_MODULE"] == "config.settings.production"
    for owner, pod in _pod_specs(objects):
        for container in _containers(pod):
            where = f"{owner['metadata']['name']}/{container['name']}"
            assert container["envFrom"] == [{"configMapRef": {"name": config["metadata"]["name"]}}]
            env = {e["name"]: e for e in container["env"]}
            assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "REDIS_URL", "AUDIT_CHAIN_KEYS"} <= set(
                env
            ), where
            for name, entry in env.items():
                if name in SECRET_SETTINGS:
                    assert "value" not in entry, f"{where}: {name} written in the manifest"
                    ref = entry["valueFrom"]["secretKeyRef"]
                    assert ref["name"] == SECRET_NAME, where
                    assert ref["key"] in SECRET_SETTINGS, where


def test_network_policies_deny_by_default_and_open_only_what_is_needed(objects):
    policies = {o["metadata"]["name"]: o for o in objects if o["kind"] == "NetworkPolicy"}
    deny = policies["releasegate-default-deny"]
    assert deny["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in deny["spec"] and "egress" not in deny["spec"]
    # Every pod is covered by the default deny.
    selector = deny["spec"]["podSelector"]["matchLabels"]
    for _owner, pod_template in (
        (o, o["spec"]["template"]) for o in objects if o["kind"] in POD_OWNERS
    ):
        assert selector.items() <= pod_template["metadata"]["labels"].items()

    ingress_rules = [
        (name, rule) for name, p in policies.items() for rule in p["spec"].get("ingress", [])
    ]
    assert sorted(name for name, _ in ingress_rules) == [
        "releasegate-metrics-ingress",
        "releasegate-web-ingress",
    ]
    # Prometheus, from its own namespace, reaches the web port and the workers' metrics port.
    (metrics_rule,) = policies["releasegate-metrics-ingress"]["spec"]["ingress"]
    (scraper,) = metrics_rule["from"]
    assert scraper["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    assert {p["port"] for p in metrics_rule["ports"]} == {8000, 9808}
    (rule,) = policies["releasegate-web-ingress"]["spec"]["ingress"]
    assert (
        policies["releasegate-web-ingress"]["spec"]["podSelector"]["matchLabels"][
            "app.kubernetes.io/component"
        ]
        == "web"
    )
    (source,) = rule["from"]
    assert source["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "ingress-nginx"
    }
    assert rule["ports"] == [{"protocol": "TCP", "port": 8000}]

    egress_ports = {
        (name, port["port"])
        for name, p in policies.items()
        for rule in p["spec"].get("egress", [])
        for port in rule["ports"]
    }
    assert egress_ports == {
        ("releasegate-egress-data", 53),
        ("releasegate-egress-data", 5432),
        ("releasegate-egress-data", 6379),
        ("releasegate-worker-egress-https", 443),
    }
    https = policies["releasegate-worker-egress-https"]["spec"]["podSelector"]["matchLabels"]
    assert https["app.kubernetes.io/component"] == "worker"


def test_overlays_name_their_own_namespace_image_and_host():
    seen = {}
    for overlay in OVERLAYS:
        objects = _render(overlay)
        namespaces = {o["metadata"].get("namespace") for o in objects}
        assert len(namespaces) == 1 and None not in namespaces, namespaces
        images = {c["image"] for _owner, pod in _pod_specs(objects) for c in _containers(pod)}
        assert len(images) == 1
        (image,) = images
        assert ":" in image and not image.endswith(":latest"), image
        host = _one(objects, "Ingress", "releasegate")["spec"]["rules"][0]["host"]
        assert host in _config(objects)["data"]["ALLOWED_HOSTS"].split(",")
        seen[overlay] = (namespaces.pop(), host)
    assert len({ns for ns, _ in seen.values()}) == len(OVERLAYS)
    assert len({host for _, host in seen.values()}) == len(OVERLAYS)


def _config(objects) -> dict:
    (config,) = [
        o
        for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("releasegate-config-")
    ]
    return config


def test_the_config_map_and_secret_start_the_production_settings(tmp_path):
    """The environment a pod gets (the production overlay's ConfigMap, the Secret's keys with
    real-looking values) passes `manage.py check --deploy` without a finding and gunicorn's
    own config check, as the container would start them. Only RELEASEGATE_VAR_DIR points at a
    temporary directory instead of the pod's emptyDir."""
    objects = _render("production")
    env = {
        "PATH": os.environ["PATH"],
        **_config(objects)["data"],
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "DATABASE_URL": "postgres://releasegate_app:x@db.invalid:5432/releasegate",
        "REDIS_URL": "redis://redis.invalid:6379/0",
        "AUDIT_CHAIN_KEYS": "k1:" + base64.b64encode(secrets.token_bytes(32)).decode(),
        "RELEASEGATE_VAR_DIR": str(tmp_path),
        "HOME": str(tmp_path),
    }
    web = _one(objects, "Deployment", "releasegate-web")["spec"]["template"]["spec"]
    command = web["containers"][0]["command"]
    for argv in (
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        [sys.executable, "-m", *command, "--check-config"],
    ):
        result = subprocess.run(
            argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert result.returncode == 0, f"{argv}:\n{result.stdout}\n{result.stderr}"

"""The app layers hold in the code itself (docs/architecture.md).

import-linter (`lint-imports` in CI) enforces the contracts in pyproject.toml; this test walks
the same imports with ``ast`` — every one, at module level or inside a function — so that a
hidden cross-app import fails the suite too, and it names the app graph it finds.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Top to bottom; apps on the same rank never import each other.
LAYERS = [("config", "demo"), ("dashboards",), ("pipelines",), ("governance",), ("releases",)]
LAYERS.append(("core",))
RANK = {app: rank for rank, apps in enumerate(LAYERS) for app in apps}


def _application_modules(app: str):
    for path in sorted((ROOT / app).rglob("*.py")):
        parts = path.relative_to(ROOT).parts
        if "tests" in parts or "migrations" in parts:
            continue
        yield path


def _imported_apps(path: Path, app: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found |= {name.split(".")[0] for name in names} & (set(RANK) - {app})
    return found


def app_graph() -> dict[str, dict[str, list[str]]]:
    """app -> imported app -> the modules that import it."""
    graph: dict[str, dict[str, list[str]]] = {app: {} for app in RANK}
    for app in RANK:
        for path in _application_modules(app):
            for other in _imported_apps(path, app):
                graph[app].setdefault(other, []).append(str(path.relative_to(ROOT)))
    return graph


def test_every_app_exists_where_the_layers_say():
    assert all((ROOT / app / "__init__.py").exists() for app in RANK)


def test_apps_import_only_apps_below_them():
    wrong = {
        f"{app} -> {other}": modules
        for app, edges in app_graph().items()
        for other, modules in edges.items()
        if RANK[other] <= RANK[app]
    }
    assert wrong == {}


def test_the_app_graph_is_acyclic():
    graph = {app: set(edges) for app, edges in app_graph().items()}
    done: set[str] = set()

    def visit(app: str, path: tuple[str, ...]) -> None:
        assert app not in path, f"import cycle: {' -> '.join((*path, app))}"
        if app in done:
            return
        for other in sorted(graph[app]):
            visit(other, (*path, app))
        done.add(app)

    for app in sorted(graph):
        visit(app, ())


def test_the_ground_floor_imports_no_project_app():
    assert app_graph()["core"] == {}


_FIRST_IMPORT = """
import importlib, os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "config.settings.test"
from django.conf import settings
from django.apps import apps
from django.apps.config import AppConfig

# Load the models as django.setup() does, but run no AppConfig.ready(): each module is then
# imported first, in a child of this process, as a worker or a management command might.
configs = [AppConfig.create(entry) for entry in settings.INSTALLED_APPS]
apps.app_configs = {config.label: config for config in configs}
for config in configs:
    config.apps = apps
apps.apps_ready = True
for config in configs:
    config.import_models()
apps.clear_cache()
apps.models_ready = True
for name in sys.argv[1:]:
    pid = os.fork()
    if pid == 0:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            print(f"{name}: {exc}", flush=True)
            os._exit(1)
        except Exception:
            os._exit(0)  # not an import problem (e.g. a setting read at import)
        os._exit(0)
    os.waitpid(pid, 0)
"""


def test_every_module_can_be_imported_first():
    """No import cycle inside an app either: a cycle that the usual start-up order happens to
    avoid breaks a Celery worker or a command that imports the modules in another order."""
    import subprocess
    import sys

    names = []
    for app in sorted(RANK):
        for path in _application_modules(app):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            if not name.startswith("config.settings"):
                names.append(name)
    result = subprocess.run(
        [sys.executable, "-c", _FIRST_IMPORT, *names],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.stdout == "", result.stdout
    assert result.returncode == 0, result.stderr[-2000:]

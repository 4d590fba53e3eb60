"""The shape the code keeps: dependencies run one way, the engine knows nothing of features."""
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def imports_of(path: Path) -> set[str]:
    """Every module a file imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def test_the_models_import_each_other_without_a_cycle():
    graph = {f"models.{p.stem}": {m for m in imports_of(p) if m.startswith("models.")}
             for p in (ROOT / "models").glob("*.py") if p.stem != "__init__"}
    visiting, done = set(), set()

    def visit(module, trail):
        assert module not in visiting, " -> ".join(trail + [module])
        if module in done:
            return
        visiting.add(module)
        for imported in graph.get(module, ()):
            visit(imported, trail + [module])
        visiting.discard(module)
        done.add(module)
    for module in graph:
        visit(module, [])


def test_the_models_know_nothing_of_flask():
    for path in (ROOT / "models").glob("*.py"):
        assert not {m for m in imports_of(path) if m == "flask" or m.startswith(("flask.", "wxbot"))}, path.name


def test_the_delivery_engine_imports_nothing_of_the_features():
    features = ("wxbot.study", "wxbot.console", "handlers", "models.study", "models.points")
    for path in (ROOT / "wxbot" / "delivery").glob("*.py"):
        assert not {m for m in imports_of(path) if m.startswith(features)}, path.name

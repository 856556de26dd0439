"""The package's shape: each stage imports only the stages below it, and no module imports in a cycle."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "builder"
# Bottom to top. The ground floor (modules directly in builder/) is below everything.
LAYERS = ("", "host", "source", "spec", "patch", "ccache", "plan", "verify", "publish", "build", "models",
          "smoke", "store", "bench", "results", "pr", "profile", "wheel", "ci", "follow", "cli")  # fmt: skip


def _module(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    """Modules of this package that `path` imports, as dotted names."""
    me = _module(path)
    package = me if path.name == "__init__.py" else me.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("builder"):
                continue
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                found.add(
                    sub
                    if (PKG.parent / sub.replace(".", "/")).exists()
                    or (PKG.parent / (sub.replace(".", "/") + ".py")).exists()
                    else target
                )
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("builder")}
    return found


def _layer(module: str) -> int:
    parts = module.split(".")
    stage = parts[1] if len(parts) > 2 or (len(parts) == 2 and (PKG / parts[1]).is_dir()) else ""
    return LAYERS.index(stage)


def _graph() -> dict[str, set[str]]:
    return {_module(p): _imports(p) for p in PKG.rglob("*.py")}


def test_no_stage_imports_a_stage_above_it() -> None:
    upward = [
        f"{m} ({LAYERS[_layer(m)] or 'ground'}) imports {t} ({LAYERS[_layer(t)]})"
        for m, targets in _graph().items()
        for t in targets
        if t != "builder" and _layer(t) > _layer(m)
    ]
    assert not upward, "\n".join(upward)


def test_no_import_cycles() -> None:
    graph = {m: {t for t in ts if t in _graph_keys} for m, ts in _graph().items()}
    cycles = []
    for start in graph:
        stack = [(start, [start])]
        seen = set()
        while stack:
            node, path = stack.pop()
            for nxt in graph.get(node, ()):
                if nxt == start and not node.endswith("__init__"):
                    cycles.append(" -> ".join([*path, nxt]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    assert not cycles, "\n".join(sorted(set(cycles)))


def test_modules_stay_small() -> None:
    big = {_module(p): n for p in PKG.rglob("*.py") if (n := len(p.read_text().splitlines())) > 320}
    assert not big, big


def test_every_folder_is_a_room_of_the_order_that_says_what_belongs_there() -> None:
    """A folder of builder/ is one of LAYERS, and its __init__.py's first line says what belongs in it."""
    rooms = {p.name for p in PKG.iterdir() if (p / "__init__.py").is_file()}
    assert rooms == set(LAYERS) - {""}, (sorted(rooms - set(LAYERS)), sorted(set(LAYERS) - rooms - {""}))
    mute = []
    for room in sorted(rooms):
        doc = ast.get_docstring(ast.parse((PKG / room / "__init__.py").read_text())) or ""
        if not doc.splitlines() or not doc.splitlines()[0].endswith("."):
            mute.append(room)
    assert not mute, f"rooms without a one-line docstring saying what belongs there: {mute}"


_graph_keys = {_module(p) for p in PKG.rglob("*.py")}

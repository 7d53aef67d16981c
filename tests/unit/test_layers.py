"""The import rule of docs/architecture.md: imports go only downwards.

Every module of the package is read (ast, every import statement, also inside functions and
`if TYPE_CHECKING:` blocks: a type-only import is a dependency all the same) and placed in a
layer by the table below.  A module may import from its own group and from any group of a
lower layer; never from a higher layer, nor from another group of its own layer (the agent
and the verbs, for example, share a level and must not import each other: each runs the one
renewal pass).  A module the table does not place fails the test: give it a layer.
"""
from __future__ import annotations

import ast
from pathlib import Path

import wucme

PACKAGE = Path(wucme.__file__).resolve().parent

#: Top to bottom: (layer, {group: module prefixes}).  A prefix names a module or a package.
LAYERS: list[tuple[str, dict[str, tuple[str, ...]]]] = [
    ("entry", {"the wucme command": ("wucme.entry", "wucme.cli", "wucme.__main__")}),
    ("faces", {"web script and admin pages": ("wucme.web", "wucme.admin"),
               "DCL interpreter": ("wucme.dclproc",),
               "uacme command line": ("wucme.uacme.main",)}),
    ("verbs", {"verbs": ("wucme.verbs", "wucme.command", "wucme.result"),
               "agent process": ("wucme.agent",)}),
    ("middle", {"middle": ("wucme.repository", "wucme.challenge", "wucme.obtain", "wucme.session",
                           "wucme.renewal", "wucme.load", "wucme.progress", "wucme.metrics",
                           "wucme.scanindex")}),
    ("services", {"uacme port": ("wucme.uacme",),
                  "reporting": ("wucme.reporting",),
                  "lock manager": ("wucme.lock", "wucme.lockpg")}),
    ("core", {"core": ("wucme.core", "wucme.crypto", "wucme.errors", "wucme.settings", "wucme.locations",
                       "wucme.daemon", "wucme._native")}),
    ("system", {"vms": ("wucme.vms",),
                "http": ("wucme.http",)}),
    ("package", {"the package itself (its version)": ("wucme",)}),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (PACKAGE.parent / rel).with_suffix(".py").exists() or (PACKAGE.parent / rel / "__init__.py").exists()


def place(module: str) -> tuple[int, str] | None:
    """(layer index, group) of the longest prefix naming *module*; None when none does."""
    best: tuple[int, int, str] | None = None
    for i, (_, groups) in enumerate(LAYERS):
        for group, prefixes in groups.items():
            for p in prefixes:
                hit = module == p or (p != "wucme" and module.startswith(p + "."))
                if hit and (best is None or len(p) > best[0]):
                    best = (len(p), i, group)
    return (best[1], best[2]) if best else None


def imports(path: Path) -> set[str]:
    """The wucme modules *path* imports (`from wucme import crypto` is wucme.crypto)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "wucme"}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "wucme":
            assert node.level == 0, f"{path}: relative import"
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if is_module(sub) else node.module)
    return found


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def test_every_module_has_a_layer() -> None:
    unplaced = [m for m in modules() if place(m) is None]
    assert not unplaced, f"give these modules a layer in LAYERS: {unplaced}"


def test_imports_go_only_downwards() -> None:
    wrong = []
    for module, path in modules().items():
        here = place(module)
        assert here is not None
        for target in sorted(imports(path)):
            there = place(target)
            assert there is not None, f"{module} imports {target}, which has no layer"
            if there[0] < here[0] or (there[0] == here[0] and there[1] != here[1]):
                wrong.append(f"{module} ({LAYERS[here[0]][0]}: {here[1]}) imports {target} "
                             f"({LAYERS[there[0]][0]}: {there[1]})")
    assert not wrong, "imports against the layers (docs/architecture.md):\n  " + "\n  ".join(wrong)


def test_the_rule_catches_the_old_mistakes(tmp_path: Path) -> None:
    """The checker itself: what the review found (the agent's cycle importing a verb, the middle
    calling up into the `--uacme` face) is refused."""
    agent, verbs = place("wucme.agent.cycle"), place("wucme.verbs.common")
    middle, face = place("wucme.renewal"), place("wucme.uacme.main")
    assert agent and verbs and middle and face
    assert agent[0] == verbs[0] and agent[1] != verbs[1]  # siblings: neither imports the other
    assert face[0] < middle[0]  # a face sits above the middle
    port = place("wucme.uacme.acme")  # the longest prefix decides: uacme.main is a face
    assert port is not None and LAYERS[port[0]][0] == "services" and port[1] == "uacme port"
    assert place("wucme") == (len(LAYERS) - 1, "the package itself (its version)")
    assert place("wucme.verbose") is None  # a prefix names a module, not the start of a name
    sample = tmp_path / "m.py"
    sample.write_text("from wucme import crypto, __version__\nimport wucme.verbs.common\n"
                      "def f():\n    from wucme.uacme.main import main\n")
    assert imports(sample) == {"wucme.crypto", "wucme", "wucme.verbs.common", "wucme.uacme.main"}

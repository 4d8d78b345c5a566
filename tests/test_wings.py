"""The wall between the two wings: the reading wing never imports the workshop.

The reading wing is what a learner reads to see backprop done by hand: the host/device
line (``minigan/backend.py``, which also holds the one fast-kernel hook), the layers, the
losses, the optimizers, the moving average, the models, the gradient checker and
``examples/train_minimal.py``. The workshop (threads and fast kernels, run folders,
checkpoint files and upgrades, data, metrics, images, plots, the CLI) may import the
reading wing, never the other way round: a fast kernel reaches a layer only by
registering itself through the hook (``minigan.backend.fast_kernel``).

Imports are read from the source (every ``import`` statement, also inside functions), so
the rule holds for code paths no test runs; a second test imports the whole reading wing
in a fresh interpreter and looks at what got loaded.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "minigan"

# The reading wing's modules, as dotted names (a package stands for every module in it).
READING_WING = (
    "minigan",  # the package's __init__ (it runs before any of its modules)
    "minigan.backend",
    "minigan.nn",
    "minigan.losses",
    "minigan.optim",
    "minigan.ema",
    "minigan.models",
    "minigan.gradcheck",
    "minigan.gan",  # the documented alias of minigan.models.gan
)
# What examples/train_minimal.py may use beyond the reading wing: loading digits and
# saving a picture of them (the allowance for the one example in the wing).
EXAMPLE_ALLOWED = ("minigan.data", "minigan.plotting")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def in_wing(name: str, wing: tuple[str, ...]) -> bool:
    """Whether module ``name`` is one of ``wing``'s modules or inside one of its packages."""
    return any(
        name == entry or (entry != "minigan" and name.startswith(entry + ".")) for entry in wing
    )


def is_reading_module(name: str) -> bool:
    return in_wing(name, READING_WING)


def imported_modules(source: str, name: str, is_package: bool) -> set[str]:
    """Every minigan module ``source`` imports (absolute or relative, anywhere in the file).

    ``from minigan.nn import linear`` may name a module or an attribute of one; both
    ``minigan.nn`` and ``minigan.nn.linear`` are reported, and the caller judges the
    names that are modules.
    """
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from .x import y
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return {m for m in found if m == "minigan" or m.startswith("minigan.")}


def all_modules() -> dict[str, Path]:
    modules = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules["examples.train_minimal"] = ROOT / "examples" / "train_minimal.py"
    return modules


def wall_violations(modules: dict[str, Path]) -> list[str]:
    """'reader imports workshop-module' for every import across the wall."""
    known = {name for name in modules if name.startswith("minigan")}
    problems = []
    for name, path in sorted(modules.items()):
        example = name == "examples.train_minimal"
        if not (example or is_reading_module(name)):
            continue
        imports = imported_modules(path.read_text(), name, path.name == "__init__.py")
        for target in sorted(imports & known):  # names that are modules, not attributes
            allowed = is_reading_module(target) or (example and in_wing(target, EXAMPLE_ALLOWED))
            if not allowed:
                problems.append(f"{name} imports {target}")
    return problems


def test_the_reading_wing_never_imports_the_workshop():
    assert wall_violations(all_modules()) == []


def test_the_wall_check_catches_a_layer_that_imports_the_workshop(tmp_path):
    """The check itself can fail: a layer that reaches into the workshop is reported,
    whether it imports at the top, inside a function, or relatively."""
    modules = all_modules()
    for i, line in enumerate(
        [
            "from minigan.runs import plan_new_run\n",
            "def f():\n    import minigan.threads\n",
            "from ..threads import set_num_threads\n",
            "from minigan import checkpoint\n",
        ]
    ):
        layer = tmp_path / f"layer{i}.py"
        layer.write_text(line)
        modules[f"minigan.nn.layer{i}"] = layer
    workshop = {"minigan.runs": "r", "minigan.threads": "t", "minigan.checkpoint": "c"}
    for name in workshop:  # (present even before the modules they stand for exist)
        modules.setdefault(name, tmp_path / "x.py")
    assert wall_violations(modules) == [
        "minigan.nn.layer0 imports minigan.runs",
        "minigan.nn.layer1 imports minigan.threads",
        "minigan.nn.layer2 imports minigan.threads",
        "minigan.nn.layer3 imports minigan.checkpoint",
    ]


def test_importing_the_reading_wing_loads_no_workshop_module():
    """In a fresh interpreter: import every reading-wing module, then list what was loaded."""
    reading = sorted(name for name in all_modules() if is_reading_module(name))
    code = (
        "import importlib, sys\n"
        f"for name in {reading!r}: importlib.import_module(name)\n"
        "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('minigan'))))\n"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert [m for m in loaded if not is_reading_module(m)] == []


def import_graph(modules: dict[str, Path]) -> dict[str, set[str]]:
    known = {name for name in modules if name.startswith("minigan")}
    graph = {}
    for name, path in modules.items():
        if not name.startswith("minigan"):
            continue
        imports = imported_modules(path.read_text(), name, path.name == "__init__.py")
        graph[name] = {m for m in imports & known if m != name and not name.startswith(m + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle of ``graph`` as [a, b, ..., a], or [] when there is none (depth first;
    a package importing its own submodules is not a cycle)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str]:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if state.get(nxt) is None and (found := visit(nxt, path + [nxt])):
                return found
        state[node] = 2
        return []

    for node in sorted(graph):
        if state.get(node) is None and (found := visit(node, [node])):
            return found
    return []


def test_minigan_has_no_import_cycles():
    """Nothing imports upward: the modules form layers (a package's __init__ importing its
    own modules, and a module importing its parent package, are not cycles)."""
    assert find_cycle(import_graph(all_modules())) == []
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]  # it can fail

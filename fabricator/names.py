"""Names a module uses but never defines: a ``NameError`` waiting in a branch no example runs.

A small model's draft often raises ``sdk.NonRetryableError`` in its error branch without importing ``sdk``, or calls
``re.search`` after importing nothing: the examples pass, and the worker crashes with ``NameError`` on the first
input that takes that branch (a published worker did, on the planner's next call). :func:`undefined_names` finds
them from the symbol tables alone (nothing is run): a name read in any scope that resolves to the module, where the
module neither assigns, imports nor defines it, and that is no builtin. :func:`with_missing_imports` adds the
imports a draft forgot when they are certain (``sdk``, an allowed module used by its own name): a small model told
"add `from wrapper import sdk`" often writes the same module again.
"""

from __future__ import annotations

import ast
import builtins
import symtable
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from wrapper import sdk

__all__ = ["UndefinedName", "undefined_names", "with_missing_imports"]

#: The worker SDK's exceptions, which a draft raises by their bare names as often as through ``sdk.``.
_SDK_ERRORS = frozenset(name for name in sdk.__all__ if name.endswith("Error"))

#: Names every module has without defining them.
_MODULE_NAMES = frozenset({"__name__", "__doc__", "__file__", "__spec__", "__loader__", "__package__", "__builtins__"})
_BUILTINS = frozenset(dir(builtins)) | _MODULE_NAMES


@dataclass(frozen=True)
class UndefinedName:
    """A name read but never defined: where it is first read, and what to write instead."""

    name: str
    line: int
    hint: str

    def __str__(self) -> str:
        return f"line {self.line}: name {self.name!r} is not defined{self.hint}"


def _tables(table: symtable.SymbolTable) -> Iterator[symtable.SymbolTable]:
    yield table
    for child in table.get_children():
        yield from _tables(child)


def _first_read(tree: ast.AST, name: str) -> int:
    lines = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Name) and n.id == name]
    return min(lines, default=0)


def _import_line(name: str, modules: Collection[str]) -> str | None:
    """The one import that binds ``name``, or ``None``.

    ``sdk``, an error class of it, an allowed module, or the package of one (``wrapper`` for ``wrapper.sdk.X``).
    """
    if name == "sdk":
        return "from wrapper import sdk"
    if name in _SDK_ERRORS:
        return f"from wrapper.sdk import {name}"
    if name in modules:
        return f"import {name}"
    inside = [module for module in modules if module.startswith(f"{name}.")]
    return f"import {inside[0]}" if len(inside) == 1 else None


def _hint(name: str, modules: Collection[str]) -> str:
    line = _import_line(name, modules)
    return f": add `{line}`" if line else ""


def undefined_names(code: str, modules: Collection[str] = ()) -> list[UndefinedName]:
    """The names ``code`` reads at module scope or as globals of its functions but never binds, first read first.

    ``modules`` are the importable module names, for the hint (``import re``). A module with a star import is not
    checked (its names cannot be known without importing). Raises ``SyntaxError`` for code that does not compile.
    """
    tree = ast.parse(code)
    if any(isinstance(node, ast.ImportFrom) and any(a.name == "*" for a in node.names) for node in ast.walk(tree)):
        return []
    module = symtable.symtable(code, "<draft>", "exec")
    defined = {s.get_name() for s in module.get_symbols() if s.is_assigned() or s.is_imported() or s.is_namespace()}
    for table in _tables(module):  # ``global x`` then ``x = ...`` in a function defines x for the module too
        defined |= {s.get_name() for s in table.get_symbols() if s.is_declared_global() and s.is_assigned()}
    missing: set[str] = set()
    for table in _tables(module):
        for symbol in table.get_symbols():
            name = symbol.get_name()
            at_module = table is module or symbol.is_global()
            if at_module and symbol.is_referenced() and name not in defined and name not in _BUILTINS:
                missing.add(name)
    found = [UndefinedName(name, _first_read(tree, name), _hint(name, modules)) for name in missing]
    return sorted(found, key=lambda u: (u.line, u.name))


def with_missing_imports(code: str, modules: Collection[str]) -> tuple[str, list[str]]:
    """``code`` with the imports it reads but forgot (``sdk``, modules of ``modules``), and the lines added.

    The lines go after the module's docstring and ``from __future__`` imports. Code that does not parse, or that
    forgot nothing that can be imported with certainty, comes back unchanged. The result is checked like any draft.
    """
    try:
        missing = undefined_names(code, modules)
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return code, []
    added = [line for u in missing if (line := _import_line(u.name, modules)) is not None]
    if not added:
        return code, []
    after = 0
    for node in tree.body:
        docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and after == 0
        future = isinstance(node, ast.ImportFrom) and node.module == "__future__"
        if not (docstring or future):
            break
        after = node.end_lineno or node.lineno
    lines = code.splitlines(keepends=True)
    head, tail = lines[:after], lines[after:]
    block = "".join(f"{line}\n" for line in added)
    if head and not head[-1].endswith("\n"):
        head[-1] += "\n"
    return "".join(head) + block + "".join(tail), added

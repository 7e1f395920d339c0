"""The static policy generated worker code must pass before it runs anywhere: a check of its syntax tree.

The policy is defence in depth; the sandbox (timeout, rlimits, scrubbed environment, no handle on the blackboard) is
the boundary. Its job is to refuse early, with a reason the generator can act on, code that reaches for what a worker
has no business touching: files, processes, the network, the interpreter's internals or the framework's own state.

Decisions:

- Imports follow an allow-list of named modules: an entry allows that module, not its submodules (``collections``
  does not allow ``collections.abc``; that is an entry of its own). An entry may also name one attribute of a module
  (``strands.Agent``): ``from strands import Agent`` is allowed, ``import strands`` and ``from strands import Skill``
  are not. Of Strands a worker gets what it needs to run an agent with the environment's model and its own tools;
  nothing that reads files, loads tools by name, builds a model provider or writes sessions. ``io``, ``pathlib``,
  ``tempfile`` and ``logging`` are refused like ``open``: a generated worker has no files to read or write, its input
  comes as arguments and its output is its return value. ``blackboard``, ``arbiter`` and ``fabricator`` are refused
  even if someone adds them to the allow-list.
- A module bound by an import can only lead to allowed modules: ``strands.models.openai`` through an allowed
  ``strands.tools.decorator`` import is refused like its import (submodules are found on disk, never imported here).
- ``from m import *`` is accepted from a few pure modules (``typing``, ``math``, ...); from any other module the
  violation names the import to write instead, from the names the code uses.
- ``Agent(...)`` gets its tools as objects: tool names or paths as strings (which Strands imports or reads from
  disk), ``load_tools_from_directory`` and ``session_manager`` are refused.
- Dunder names are refused in code *and in string literals* (``"{0.__class__}".format(x)`` reads attributes), except
  a few harmless ones; ``str.format`` only on a literal template; ``getattr`` and friends only with a literal name.
- Private attributes of imported modules are refused (``random._os`` is the ``os`` module), and so are attributes that
  lead to modules or frames wherever they appear (``datetime.sys``, ``gen.gi_frame.f_globals``).
- Module and class bodies are declarations only, because they run at import time: imports, docstrings, constants
  (literals and a few pure constructors such as ``re.compile``), functions and classes with allow-listed decorators.
- ``handler`` is bound once, to a plain undecorated ``def``: the harness reads its signature from the tree.
"""

from __future__ import annotations

import ast
import builtins
import re
from dataclasses import dataclass

from fabricator._modules import is_module

__all__ = ["DEFAULT_POLICY", "Policy", "PolicyViolation", "check_policy"]

_DUNDER = re.compile(r"__\w+__")
_TEMPLATE_CALLS = frozenset({"format", "format_map"})
_ATTRIBUTE_READERS = frozenset({"getattr", "setattr", "delattr", "hasattr"})
#: Keywords of ``Agent(...)`` that make Strands read files or write sessions.
_AGENT_REFUSED_KEYWORDS = frozenset({"load_tools_from_directory", "session_manager"})


@dataclass(frozen=True, slots=True)
class PolicyViolation:
    """One reason the policy refuses the code.

    Attributes:
        rule: ``size``, ``syntax``, ``import``, ``banned-name``, ``banned-attribute``, ``private-attribute``,
            ``dunder``, ``dynamic-attribute``, ``agent``, ``top-level`` or ``handler``.
        line: 1-based line of the offending code.
        message: what was found, phrased for the generator's next attempt.
    """

    rule: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: [{self.rule}] {self.message}"


@dataclass(frozen=True, slots=True)
class Policy:
    """What generated worker code may contain; every field has a safe default.

    Attributes:
        allowed_imports: importable modules, each by its full name (not its submodules), and single names of a
            module (``strands.Agent``: ``from strands import Agent``).
        refused_imports: modules refused whatever the allow-list says, with their submodules (the framework's own
            state).
        star_imports: modules ``from m import *`` is accepted from (pure ones, whose every public name is harmless).
        banned_names: builtins that may not even be referenced.
        banned_attributes: attribute names that lead to modules, frames or code objects.
        allowed_dunders: dunder names that may appear in code and strings.
        import_time_calls: calls allowed in module and class bodies and default values.
        allowed_decorators: decorators allowed on functions and classes (``x.setter`` and friends always are).
        max_source_bytes: largest source accepted, UTF-8 encoded.
    """

    allowed_imports: frozenset[str] = frozenset(
        {
            "__future__", "base64", "bisect", "calendar", "collections", "copy", "csv", "dataclasses", "datetime",
            "collections.abc", "decimal", "difflib", "enum", "fractions", "functools", "hashlib", "heapq", "html",
            "itertools", "json", "json.decoder", "math", "numbers", "operator", "random", "re", "statistics",
            "string", "textwrap", "time", "typing", "unicodedata", "urllib.parse", "uuid", "wrapper.sdk", "zoneinfo",
            # Strands, by name: an agent with the environment's model (wrapper.sdk.model()) and the worker's own
            # tools, the types of its messages and results, and the vended tools that touch nothing outside it.
            "strands.Agent", "strands.ToolContext", "strands.tool", "strands.agent.agent_result",
            "strands.tools.decorator", "strands.types.content", "strands.types.exceptions", "strands.types.tools",
            "strands.vended_tools.notebook", "strands.vended_tools.sleep", "strands.vended_tools.stop",
        }
    )  # fmt: skip
    refused_imports: frozenset[str] = frozenset({"arbiter", "blackboard", "fabricator"})
    star_imports: frozenset[str] = frozenset(
        {
            "collections", "dataclasses", "datetime", "decimal", "enum", "fractions", "functools", "heapq",
            "itertools", "math", "statistics", "string", "textwrap", "typing",
        }
    )  # fmt: skip
    banned_names: frozenset[str] = frozenset(
        {
            "__import__", "breakpoint", "compile", "eval", "exec", "exit", "globals", "help", "input",
            "locals", "open", "quit", "vars",
        }
    )  # fmt: skip
    banned_attributes: frozenset[str] = frozenset(
        {
            "Formatter", "_os", "_sys", "ag_code", "ag_frame", "builtins", "co_code", "cr_code", "cr_frame",
            "f_back", "f_builtins", "f_code", "f_globals", "f_locals", "gi_code", "gi_frame", "importlib",
            "load_tool_from_filepath", "os", "process_tools", "subprocess", "sys", "tb_frame", "tb_next",
            "tool_registry",
        }
    )  # fmt: skip
    allowed_dunders: frozenset[str] = frozenset(
        {"__all__", "__annotations__", "__doc__", "__init__", "__name__", "__post_init__", "__qualname__", "__slots__"}
    )
    import_time_calls: frozenset[str] = frozenset(
        {
            "Decimal", "Enum", "Fraction", "NamedTuple", "NewType", "Template", "TypeVar", "TypedDict", "UUID",
            "ZoneInfo", "collections.namedtuple", "datetime.date", "datetime.datetime", "datetime.time",
            "datetime.timedelta", "datetime.timezone", "dataclasses.field", "decimal.Decimal", "dict", "field",
            "fractions.Fraction", "frozenset", "list", "namedtuple", "object", "range", "re.compile", "set",
            "string.Template", "timedelta", "timezone", "tuple", "typing.NamedTuple", "typing.NewType",
            "typing.TypeVar", "typing.TypedDict", "uuid.UUID", "zoneinfo.ZoneInfo",
        }
    )  # fmt: skip
    allowed_decorators: frozenset[str] = frozenset(
        {
            "abc.abstractmethod", "abstractmethod", "cache", "cached_property", "classmethod", "dataclass",
            "dataclasses.dataclass", "enum.unique", "final", "functools.cache", "functools.cached_property",
            "functools.lru_cache", "functools.total_ordering", "lru_cache", "overload", "property", "staticmethod",
            "strands.tool", "tool", "total_ordering", "typing.final", "typing.overload", "unique",
        }
    )  # fmt: skip
    max_source_bytes: int = 64 * 1024


DEFAULT_POLICY = Policy()


def check_policy(source: str, policy: Policy = DEFAULT_POLICY) -> list[PolicyViolation]:
    """Check worker source against ``policy`` without importing or running it.

    Args:
        source: the module's source code.
        policy: what is allowed.

    Returns:
        Every violation found, by line; empty when the code may go on to the next checks.
    """
    size = len(source.encode("utf-8", "surrogatepass"))
    if size > policy.max_source_bytes:
        return [PolicyViolation("size", 1, f"source is {size} bytes; the limit is {policy.max_source_bytes}")]
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        return [PolicyViolation("syntax", exc.lineno or 1, f"{exc.msg} (column {exc.offset or 0})")]
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        return [PolicyViolation("syntax", 1, f"{type(exc).__name__}: {exc}")]
    checker = _Checker(policy)
    try:
        checker.run(tree)
    except RecursionError:
        checker.found.append(PolicyViolation("syntax", 1, "expressions are nested too deeply to check"))
    return sorted(set(checker.found), key=lambda v: (v.line, v.rule, v.message))


def _dotted(node: ast.expr) -> str | None:
    """``a.b.c`` for a chain of names, else ``None``."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return None if base is None else f"{base}.{node.attr}"
    return None


def _refused(module: str, entries: frozenset[str]) -> bool:
    """A refused entry covers its submodules too, dotted or not."""
    return any(module == entry or module.startswith(entry + ".") for entry in entries)


def _is_str(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


class _Checker:
    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.found: list[PolicyViolation] = []
        self.imported: set[str] = set()
        self.modules: dict[str, str] = {}  # local name -> the module an import bound to it
        self.inner: set[int] = set()  # attribute nodes that are part of a longer chain
        self.tree: ast.Module | None = None

    def add(self, rule: str, node: ast.AST, message: str) -> None:
        self.found.append(PolicyViolation(rule, getattr(node, "lineno", 1), message))

    def run(self, tree: ast.Module) -> None:
        self.tree = tree
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                self.check_import(node)
            elif isinstance(node, ast.Attribute):
                self.inner.add(id(node.value))
        for node in ast.walk(tree):
            self.check_node(node)
        self.check_body(tree.body, "module")
        self.check_handler(tree)

    # ------------------------------------------------------------ imports

    def allowed(self, name: str) -> bool:
        return not _refused(name, self.policy.refused_imports) and name in self.policy.allowed_imports

    def refuse(self, node: ast.AST, name: str, through: str | None = None) -> None:
        if through is None:
            found = f"import of {name!r}"
        else:
            found = f"module {name!r}" if through == name else f"{through!r} reaches {name!r}, which"
        self.add("import", node, f"{found} is not allowed{self.alternatives(name)}")

    def alternatives(self, name: str) -> str:
        """What the allow-list offers from the same package, when it offers part of it."""
        top = name.partition(".")[0]
        entries = sorted(e for e in self.policy.allowed_imports if e.partition(".")[0] == top and "." in e)
        if not entries or top in self.policy.allowed_imports:
            return ""
        names: dict[str, list[str]] = {}
        for entry in entries:
            if not is_module(entry):
                parent, _, attribute = entry.rpartition(".")
                names.setdefault(parent, []).append(attribute)
        offered = [f"'from {parent} import {', '.join(found)}'" for parent, found in names.items()]
        modules = [entry for entry in entries if is_module(entry)]
        if modules:
            offered.append(f"the module{'s' if len(modules) > 1 else ''} {', '.join(modules)}")
        hint = " (its model comes from wrapper.sdk.model())" if top == "strands" else ""
        return f"; of {top} a worker may use only {' and '.join(offered)}{hint}"

    def check_import(self, node: ast.Import | ast.ImportFrom) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name
                parent, _, attribute = name.rpartition(".")
                if self.allowed(name) and parent and not is_module(name):
                    self.add("import", node, f"{name!r} is not a module: write 'from {parent} import {attribute}'")
                elif not self.allowed(name):
                    self.refuse(node, name)
                local = alias.asname or name.partition(".")[0]
                self.imported.add(local)
                self.modules[local] = name if alias.asname else local
            return
        if node.level or node.module is None:
            self.add("import", node, "relative imports are not allowed")
            return
        for alias in node.names:
            full = f"{node.module}.{alias.name}"
            if alias.name == "*":
                self.check_star_import(node, node.module)
                continue
            if is_module(full):
                if not self.allowed(full):
                    self.refuse(node, full)
                self.modules[alias.asname or alias.name] = full
            elif _refused(full, self.policy.refused_imports) or not (self.allowed(node.module) or self.allowed(full)):
                self.refuse(node, full)
            elif alias.name.startswith("_") or alias.name in self.policy.banned_attributes:
                self.add("private-attribute", node, f"importing {alias.name!r} from {node.module!r} is not allowed")
            self.imported.add(alias.asname or alias.name)

    def check_star_import(self, node: ast.ImportFrom, module: str) -> None:
        if module in self.policy.star_imports and self.allowed(module):
            return
        wanted = [n for n in self.free_names() if self.allowed(module) or self.allowed(f"{module}.{n}")]
        instead = f"write 'from {module} import {', '.join(wanted)}'" if wanted else "import the names you use by name"
        self.add("import", node, f"'from {module} import *' is not allowed: {instead}")

    def free_names(self) -> list[str]:
        """Names the code reads but never binds (what a star import would have to provide), sorted."""
        assert self.tree is not None
        bound = set(dir(builtins))
        used: list[str] = []
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Name):
                if isinstance(node.ctx, ast.Load):
                    used.append(node.id)
                else:
                    bound.add(node.id)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                bound.add(node.name)
            elif isinstance(node, ast.arg):
                bound.add(node.arg)
            elif isinstance(node, ast.alias) and node.name != "*":
                bound.add(node.asname or node.name.partition(".")[0])
        return sorted(set(used) - bound)

    def check_module_path(self, node: ast.AST, dotted: str) -> None:
        """A chain of attributes from an imported module may only lead to allowed modules."""
        root, _, rest = dotted.partition(".")
        if root not in self.modules or not rest:
            return
        parts = f"{self.modules[root]}.{rest}".split(".")
        depth = next((n for n in range(len(parts), 0, -1) if is_module(".".join(parts[:n]))), 0)
        if not depth:
            return
        reached = ".".join(parts[:depth])
        if self.allowed(reached):
            return
        if depth < len(parts) and self.allowed(f"{reached}.{parts[depth]}"):
            return  # an allowed name of the module (strands.Agent)
        # Past the module an import bound (partly vetted, as strands is), the name is what the allow-list judges.
        named = depth < len(parts) and reached == self.modules[root]
        self.refuse(node, ".".join(parts[: depth + 1]) if named else reached, dotted)

    # ------------------------------------------------------------ names, attributes, calls, strings

    def dunder(self, name: str) -> bool:
        return bool(_DUNDER.fullmatch(name)) and name not in self.policy.allowed_dunders

    def check_node(self, node: ast.AST) -> None:
        if isinstance(node, ast.Name):
            if node.id in self.policy.banned_names:
                self.add("banned-name", node, f"{node.id!r} is not allowed")
            elif self.dunder(node.id):
                self.add("dunder", node, f"name {node.id!r} is not allowed")
        elif isinstance(node, ast.Attribute):
            root = node.value
            while isinstance(root, ast.Attribute):
                root = root.value
            if self.dunder(node.attr):
                self.add("dunder", node, f"attribute {node.attr!r} is not allowed")
            elif node.attr in self.policy.banned_attributes:
                self.add("banned-attribute", node, f"attribute {node.attr!r} is not allowed")
            elif node.attr.startswith("_") and isinstance(root, ast.Name) and root.id in self.imported:
                self.add("private-attribute", node, f"private attribute {node.attr!r} of {root.id!r}")
            elif id(node) not in self.inner and (dotted := _dotted(node)) is not None:
                self.check_module_path(node, dotted)
        elif isinstance(node, ast.Call):
            self.check_call(node)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            bad = [name for name in _DUNDER.findall(node.value) if self.dunder(name)]
            if bad:
                self.add("dunder", node, f"string literal names {bad[0]!r}")

    def check_call(self, node: ast.Call) -> None:
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
        if name == "Agent":
            self.check_agent(node)
            return
        if isinstance(func, ast.Name) and name in _ATTRIBUTE_READERS:
            name_arg = node.args[1] if len(node.args) >= 2 else None
            attribute = name_arg.value if isinstance(name_arg, ast.Constant) else None
            literal = isinstance(attribute, str)
            target = _dotted(node.args[0]) if node.args else None
            if isinstance(attribute, str) and target is not None:
                self.check_module_path(node, f"{target}.{attribute}")
        elif name == "attrgetter":
            literal = all(_is_str(arg) for arg in node.args) and not node.keywords
        elif name == "methodcaller":
            literal = bool(node.args) and _is_str(node.args[0])
        elif isinstance(func, ast.Attribute) and name in _TEMPLATE_CALLS:
            if not _is_str(func.value):
                self.add("dynamic-attribute", node, f"{name}() only on a literal template (use an f-string)")
            return
        else:
            return
        if not literal:
            self.add("dynamic-attribute", node, f"{name}() needs a literal attribute name")

    def check_agent(self, node: ast.Call) -> None:
        """Strands imports a tool named by a string, or reads it from a path: tools go in as objects."""
        if len(node.args) > 1:
            self.add("agent", node, "pass Agent's options by keyword: Agent(model=sdk.model(), tools=[...])")
        for keyword in node.keywords:
            if keyword.arg is None:
                self.add("agent", node, "pass Agent's options by keyword, not with **")
            elif keyword.arg in _AGENT_REFUSED_KEYWORDS:
                self.add("agent", node, f"Agent({keyword.arg}=...) is not allowed: a worker has no files or sessions")
            elif keyword.arg == "tools" and not (
                isinstance(keyword.value, ast.List | ast.Tuple)
                and all(isinstance(e, ast.Name | ast.Attribute) for e in keyword.value.elts)
            ):
                self.add(
                    "agent",
                    node,
                    "Agent(tools=...) takes a list of tool objects (functions decorated with @tool, or allowed vended"
                    " tools), written out: tools=[my_tool, notebook]; never names or paths as strings",
                )

    # ------------------------------------------------------------ what runs at import time

    def static_problem(self, expr: ast.expr) -> str | None:
        for node in ast.walk(expr):
            if isinstance(node, ast.Call) and _dotted(node.func) not in self.policy.import_time_calls:
                name = _dotted(node.func) or "an expression"
                return f"call to {name}() runs at import time; make that call inside handler (or a def it calls)"
            if isinstance(node, ast.Lambda):
                return "define functions with def, not lambda"
        return None

    def check_static(self, expr: ast.expr | None, node: ast.AST, where: str) -> None:
        problem = None if expr is None else self.static_problem(expr)
        if problem is not None:
            self.add("top-level", node, f"{where}: {problem}")

    def check_body(self, body: list[ast.stmt], where: str) -> None:
        for stmt in body:
            if _is_docstring(stmt) or isinstance(stmt, ast.Pass):
                continue
            if isinstance(stmt, ast.Import | ast.ImportFrom) and where == "module":
                continue
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                self.check_decorator_name(stmt, stmt.name)
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                self.check_function(stmt)
            elif isinstance(stmt, ast.ClassDef):
                self.check_decorators(stmt)
                for expr in stmt.bases:
                    self.check_static(expr, stmt, f"bases of class {stmt.name!r}")
                if stmt.keywords:
                    self.add("top-level", stmt, f"class {stmt.name!r}: metaclass and class keywords are not allowed")
                self.check_body(stmt.body, f"class {stmt.name!r}")
            elif isinstance(stmt, ast.Assign | ast.AnnAssign):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                for name in (n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)):
                    self.check_decorator_name(stmt, name)
                self.check_static(stmt.value, stmt, f"{where} constant")
                if isinstance(stmt, ast.AnnAssign):
                    self.check_static(stmt.annotation, stmt, "annotation")
            else:
                kind = type(stmt).__name__
                self.add("top-level", stmt, f"{where} body: {kind} statements run at import time; move it into a def")

    def check_decorator_name(self, node: ast.stmt, name: str) -> None:
        """An allowed decorator runs at import time: its name must stay the one that was vetted."""
        if name in self.policy.allowed_decorators:
            self.add("top-level", node, f"{name!r} is the name of an allowed decorator; give yours another name")

    def check_decorators(self, node: ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) -> None:
        for decorator in node.decorator_list:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            name = _dotted(target) or ""
            if name not in self.policy.allowed_decorators and name.rpartition(".")[2] not in ("setter", "deleter"):
                self.add("top-level", decorator, f"decorator {name or 'expression'!r} on {node.name!r} is not allowed")
            elif isinstance(decorator, ast.Call):
                for arg in [*decorator.args, *(k.value for k in decorator.keywords)]:
                    self.check_static(arg, decorator, f"decorator of {node.name!r}")

    def check_function(self, fn: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.check_decorators(fn)
        args = fn.args
        for default in [*args.defaults, *args.kw_defaults]:
            self.check_static(default, fn, f"default value in {fn.name!r}")
        for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
            if arg is not None:
                self.check_static(arg.annotation, fn, f"annotation in {fn.name!r}")
        self.check_static(fn.returns, fn, f"annotation in {fn.name!r}")

    def check_handler(self, tree: ast.Module) -> None:
        bindings: list[ast.stmt] = []
        for stmt in tree.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and stmt.name == "handler":
                bindings.append(stmt)
            elif isinstance(stmt, ast.Assign | ast.AnnAssign | ast.AugAssign):
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                if any(isinstance(n, ast.Name) and n.id == "handler" for t in targets for n in ast.walk(t)):
                    bindings.append(stmt)
            elif isinstance(stmt, ast.Import | ast.ImportFrom):
                if any((a.asname or a.name) == "handler" for a in stmt.names):
                    bindings.append(stmt)
        if not bindings:
            self.add("handler", tree, "no module-level 'def handler(...)'")
        elif len(bindings) > 1:
            self.add("handler", bindings[1], "'handler' is bound more than once; define it once")
        elif isinstance(bindings[0], ast.AsyncFunctionDef):
            self.add("handler", bindings[0], "'handler' must be a plain def, not async def")
        elif not isinstance(bindings[0], ast.FunctionDef):
            self.add("handler", bindings[0], "'handler' must be a def (not a lambda, assignment, import or class)")
        elif bindings[0].decorator_list:
            self.add("handler", bindings[0], "'handler' must not be decorated: its signature is its contract")


def _is_docstring(stmt: ast.stmt) -> bool:
    return isinstance(stmt, ast.Expr) and _is_str(stmt.value)

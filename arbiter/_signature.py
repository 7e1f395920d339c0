"""What a Python function tells about the agent it defines: a description and the JSON Schema of its input.

The schema is a pydantic model of the parameters (as Strands' ``@tool`` builds one): a parameter's type gives its JSON
type, ``Annotated[T, "text"]`` or a pydantic ``Field(description=...)`` or the docstring's ``Args:`` entry gives its
description (in that order of precedence), ``Field`` and ``annotated_types`` metadata give constraints, and a default
makes it optional. A type pydantic cannot describe (an arbitrary class) accepts any value, as an unannotated parameter
does.
"""

from __future__ import annotations

import inspect
import re
import typing
import warnings
from collections.abc import Callable
from typing import Annotated, Any

import pydantic
from pydantic.fields import FieldInfo
from pydantic.json_schema import PydanticJsonSchemaWarning

from arbiter.exceptions import UsageError

__all__ = ["description_from_docstring", "schema_from_signature"]

_SECTION = re.compile(r"^(\w[\w ]*):\s*$")
_ARGS_SECTIONS = {"args", "arguments", "parameters", "params"}
_ENTRY = re.compile(r"^(\*{0,2}\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")


def description_from_docstring(handler: Callable[..., Any]) -> str:
    """The docstring without its ``Args:`` section (the planner reads each argument's text in the schema).

    Returns:
        The cleaned docstring, or an empty string when there is none.
    """
    lines = (inspect.getdoc(handler) or "").splitlines()
    kept: list[str] = []
    skipping = False
    for line in lines:
        header = _SECTION.match(line)
        if header and not line.startswith(" "):
            skipping = header.group(1).strip().lower() in _ARGS_SECTIONS
            if skipping:
                continue
        if skipping and (line.startswith(" ") or not line.strip()):
            continue
        skipping = False
        kept.append(line)
    return "\n".join(kept).strip()


def _docstring_args(handler: Callable[..., Any]) -> dict[str, str]:
    """The Google-style ``Args:`` entries of the docstring: name -> text (continuation lines joined)."""
    entries: dict[str, str] = {}
    current: str | None = None
    indent: int | None = None
    inside = False
    for line in (inspect.getdoc(handler) or "").splitlines():
        if not line.startswith(" "):
            header = _SECTION.match(line)
            inside = bool(header) and header is not None and header.group(1).strip().lower() in _ARGS_SECTIONS
            current, indent = None, None
            continue
        if not inside:
            continue
        width = len(line) - len(line.lstrip())
        entry = _ENTRY.match(line.strip())
        if entry and (indent is None or width <= indent):
            indent = width
            current = entry.group(1).lstrip("*")
            entries[current] = entry.group(2).strip()
        elif current is not None and line.strip():
            entries[current] = f"{entries[current]} {line.strip()}".strip()
    return entries


def _is_constraint(meta: object) -> bool:
    module = type(meta).__module__.split(".")[0]
    return isinstance(meta, FieldInfo) or module in {"pydantic", "pydantic_core", "annotated_types"}


def _split(owner: str, name: str, hint: Any) -> tuple[Any, str | None, list[Any]]:
    """A hint's base type, its ``Annotated`` description and its ``Annotated`` constraints.

    Raises:
        UsageError: a piece of ``Annotated`` metadata is neither a description string nor a pydantic constraint, or
            there are two description strings.
    """
    if typing.get_origin(hint) is not Annotated:
        return hint, None, []
    base, *metadata = typing.get_args(hint)
    texts = [meta for meta in metadata if isinstance(meta, str)]
    for meta in metadata:
        if not isinstance(meta, str) and not _is_constraint(meta):
            raise UsageError(
                f"{owner}: parameter {name!r}: Annotated metadata {meta!r} ({type(meta).__name__}) is neither a "
                'description string (Annotated[int, "what it is"]) nor a pydantic Field or constraint'
            )
    if len(texts) > 1:
        raise UsageError(f"{owner}: parameter {name!r} has {len(texts)} description strings in Annotated; give one")
    return base, (texts[0] if texts else None), [meta for meta in metadata if not isinstance(meta, str)]


class _OneHint:
    """One annotation with the function's globals, so that an unresolvable hint costs only its own parameter."""

    def __init__(self, annotation: Any, globals_: dict[str, Any]) -> None:
        self.__annotations__ = {"hint": annotation}
        self.__globals__ = globals_


def _type_hints(handler: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(handler, include_extras=True)
    except Exception:  # a name that does not resolve (a class local to a function): resolve the others one by one
        pass
    hints: dict[str, Any] = {}
    globals_ = getattr(handler, "__globals__", {})
    for name, annotation in getattr(handler, "__annotations__", {}).items():
        try:
            hints[name] = typing.get_type_hints(_OneHint(annotation, globals_), include_extras=True)["hint"]
        except Exception:
            hints[name] = Any
    return hints


def _describable(base: Any) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PydanticJsonSchemaWarning)
            pydantic.TypeAdapter(base).json_schema()
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticInvalidForJsonSchema):
        return False
    return True


def _strip_titles(schema: dict[str, Any]) -> None:
    schema.pop("title", None)
    for prop in schema.get("properties", {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)


def schema_from_signature(handler: Callable[..., Any], *, owner: str | None = None) -> dict[str, Any]:
    """The JSON Schema of a callable's keyword arguments (``*args`` and ``**kwargs`` are left out).

    Args:
        handler: the function.
        owner: the name used in error messages (default: the function's name).

    Returns:
        ``{"type": "object", "properties": {...}, "required": [...]}`` (``required`` only when some are).

    Raises:
        UsageError: an ``Annotated`` hint carries metadata that is not a description string or a pydantic constraint.
    """
    label = owner or str(getattr(handler, "__name__", repr(handler)))
    hints = _type_hints(handler)
    documented = _docstring_args(handler)
    fields: dict[str, Any] = {}
    for parameter in inspect.signature(handler).parameters.values():
        if parameter.kind in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD):
            continue
        base, text, constraints = _split(label, parameter.name, hints.get(parameter.name, Any))
        if not _describable(base):
            base = Any
        default = parameter.default
        field = (
            default
            if isinstance(default, FieldInfo)
            else pydantic.Field(default=... if default is parameter.empty else default)
        )
        description = text or field.description or documented.get(parameter.name)
        if description:
            field = FieldInfo.merge_field_infos(field, description=description)
        annotated = Annotated[(base, *constraints)] if constraints else base
        fields[parameter.name] = (annotated, field)
    model = pydantic.create_model(
        f"{label}_input", __config__=pydantic.ConfigDict(arbitrary_types_allowed=True), **fields
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PydanticJsonSchemaWarning)
        schema: dict[str, Any] = model.model_json_schema()
    _strip_titles(schema)
    return {"type": schema.pop("type", "object"), "properties": schema.pop("properties", {}), **schema}

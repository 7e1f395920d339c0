"""Hypothesis strategies of hostile JSON values that the strict boundary lets through, and of ones it refuses."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from blackboard.strict_json import MAX_DEPTH, MAX_INT, MIN_INT

__all__ = ["hostile_text", "hostile_values", "nested", "refused_text"]


def nested(depth: int, leaf: Any = 1) -> Any:
    """``leaf`` inside ``depth`` containers, objects and arrays in turn."""
    value = leaf
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


#: Every code point but surrogates (NUL, bidi controls, emoji, BOM, line separators), and some chosen ones.
hostile_text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20) | st.sampled_from(
    ["\x00", "\u202e\u2066evil\u2069", "\U0001f600", "\ufeff", "\\ud800", "\n\r\t\u2028", '"', "</script>"]
)
hostile_scalars = (
    st.none()
    | st.booleans()
    | st.integers(MIN_INT, MAX_INT)
    | st.sampled_from([MIN_INT, MAX_INT, 0, -1])
    | st.floats(allow_nan=False, allow_infinity=False)
    | hostile_text
)
_trees = st.recursive(
    hostile_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4),
    max_leaves=30,
)


def hostile_values(max_depth: int = MAX_DEPTH) -> st.SearchStrategy[Any]:
    """Values within the boundary: random trees, and scalars nested up to ``max_depth`` levels."""
    deep = st.builds(nested, st.integers(max_depth - 3, max_depth), hostile_scalars)
    return _trees | deep


#: Text the boundary refuses: it holds a lone surrogate.
refused_text = st.builds(
    lambda before, surrogate, after: before + surrogate + after,
    hostile_text,
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    hostile_text,
)

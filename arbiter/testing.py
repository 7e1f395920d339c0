"""Deterministic models for tests and offline runs.

:class:`ScriptedModel` plays a fixed list of model turns (text and/or tool calls, with optional token usage) and fails
loudly on an unexpected extra call; ``--model scripted:<file.json>`` uses the same script format. It lives in the
wrapper package (so that sandboxed workers can use it too) and is re-exported here.
"""

from wrapper.testing import ScriptedModel, ScriptExhaustedError, ToolCall, Turn

__all__ = ["ScriptExhaustedError", "ScriptedModel", "ToolCall", "Turn"]

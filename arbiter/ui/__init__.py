"""``arbiter ui``: a live local dashboard to watch orchestrations and decide about agent versions.

See ``docs/ui.md`` for the pages and the security model. Needs the ``ui`` extra (Starlette, uvicorn, sse-starlette,
Jinja2, python-multipart, Pygments).
"""

from arbiter.ui._security import Gate
from arbiter.ui.app import Dashboard, create_app, new_gate

__all__ = ["Dashboard", "Gate", "create_app", "new_gate"]

"""kds: kitchen order-endpoint daemon and display service."""

from __future__ import annotations

import sys

__version__ = "0.1.0"


def _import_structlog_without_rich() -> None:
    """Import structlog with rich hidden, before any kds module imports it.

    structlog imports rich, when it is installed, for pretty tracebacks in its dev console:
    about 0.2 s and several MB on every start of a daemon that logs JSON lines. Without it
    the console renderer prints plain tracebacks. A process that loaded rich (or structlog)
    before kds keeps it as it is.
    """
    if "structlog" in sys.modules or "rich" in sys.modules:
        return
    sys.modules["rich"] = None  # type: ignore[assignment]  # `import rich` → ImportError
    try:
        import structlog  # noqa: F401
    finally:
        del sys.modules["rich"]


_import_structlog_without_rich()

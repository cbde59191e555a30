"""Tool whitelisting (``tool_config_files``): which tools may run here, and what their jobs may do.

:mod:`lwr.tools.toolbox` reads the administrator's Galaxy toolbox files, :mod:`lwr.tools.validator`
compiles each tool's ``<validators>``, and :mod:`lwr.tools.authorization` holds the checks the
manager runs at setup, upload, submit and before queueing.
"""

from __future__ import annotations

from lwr.tools.authorization import ALLOW_ALL, Authorization, ToolAuthorizer
from lwr.tools.toolbox import Tool, ToolBox

__all__ = ["ALLOW_ALL", "Authorization", "Tool", "ToolAuthorizer", "ToolBox"]

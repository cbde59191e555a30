"""Sphinx configuration for LWR's documentation (Markdown pages through MyST)."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

from lwr import __version__

project = "LWR"
author = "The LWR developers"
release = version = __version__
extensions = ["myst_parser"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
exclude_patterns = ["_build"]
html_theme = "alabaster"
myst_heading_anchors = 3

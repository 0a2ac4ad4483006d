"""Fixtures of the render tests: see render_support.py."""

from render_support import extmods, render_root, renders, unsynced_render  # noqa: F401

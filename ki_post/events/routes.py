"""Every page of the package on its one blueprint: importing this module registers them all."""
from __future__ import annotations

from . import automation_views, badge_views, checkin_views, question_views, views  # noqa: F401  (each adds its routes to bp)
from .blueprint import bp

__all__ = ["bp"]

"""The events pages' blueprint. Each views module adds its routes to ``bp``; ``routes`` loads them all, so no
views module imports another to get its routes registered."""
from __future__ import annotations

from flask import Blueprint

bp = Blueprint("events", __name__)

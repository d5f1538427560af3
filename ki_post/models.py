"""Imports every domain's models so that the metadata is complete (Alembic, create_all)."""
from . import blobs as _blobs  # noqa: F401
from .auth import models as _auth  # noqa: F401
from .events import models as _events  # noqa: F401
from .events import attendance as _attendance  # noqa: F401
from .events import question_models as _event_questions  # noqa: F401
from .extensions import db
from .letters import models as _letters  # noqa: F401
from .outbox import models as _outbox  # noqa: F401
from .recipients import models as _recipients  # noqa: F401
from . import settings as _settings  # noqa: F401

metadata = db.metadata

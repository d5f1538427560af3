"""The erasure tests send through the outbox's real aiosmtpd server."""
from tests.outbox.conftest import smtp, smtp_app  # noqa: F401  (fixtures shared with the outbox tests)

"""The worker follows the settings of Verwaltung → Einstellungen while it runs: rate, daily cap, SMTP
server and login are read again between two messages, so a change needs no restart."""
from __future__ import annotations

from typing import Any

from .. import settings
from .transport import make_transport, transport_settings


class SettingsFollowing:
    """Mixed into ``Worker`` (which provides app, transport, _ahead, _abandon_begun, _rate_limited and
    _build_claim_statement)."""

    def _follow(self: Any, transport: Any) -> None:
        """Set up the transport: the given one (tests), kept as it is, or one of our own that follows
        the settings (read first, so that `outbox work` starts with the saved SMTP server)."""
        settings.refresh(self.app)
        self._own_transport = transport is None
        self.transport = transport or make_transport(self.app)
        self._transport_settings = transport_settings(self.app) if transport is None else None
        self._claim_statements = {}

    def follow_settings(self: Any, force: bool = False) -> None:
        """Apply changed settings; called at the top of the send loop, where no SMTP transaction is
        begun. A changed server or login closes the connection and builds the transport anew."""
        settings.refresh(self.app, force=force)
        if not self._own_transport:
            return
        wanted = transport_settings(self.app)
        if wanted != self._transport_settings:
            self._abandon_begun()
            self.transport.close()
            self.transport = make_transport(self.app)
            self._transport_settings = wanted
            self._ahead = None

    @property
    def _claim_statement(self: Any):
        """Claim one row by id if it is still due and unchanged since it was read (parameters: row_id,
        built_revision, now, worker, rate_since, day_start); one statement per kind of limit in force,
        since a limit switched on or off changes the statement's conditions."""
        shape = (self._rate_limited, int(self.app.config["MAIL_DAILY_CAP"] or 0) > 0)
        if shape not in self._claim_statements:
            self._claim_statements[shape] = self._build_claim_statement()
        return self._claim_statements[shape]

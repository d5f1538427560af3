"""Verwaltung → Einstellungen: sender, sending limits, SMTP and IMAP, edited in the browser by admins."""

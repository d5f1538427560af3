"""Every setting with its safe default.

Layers, later wins: this module, then ``instance/config.py``, then environment variables
``KI_POST_<NAME>`` (e.g. ``KI_POST_MAIL_SERVER``). Values from the environment are converted to
the type of the default (``true``/``false`` for switches, numbers for numbers).
"""
import os

# --- Core -------------------------------------------------------------------------------
# SQLAlchemy URL; empty = SQLite file instance/ki-post.sqlite3. PostgreSQL: postgresql://user@host/db
DATABASE_URL = ""
# Signs sessions and CSRF tokens; empty = a random key is generated into instance/secret_key.
SECRET_KEY = ""
# Public address of the app, used for links in mails (RSVP links). No trailing slash.
BASE_URL = "http://127.0.0.1:5000"
# Reverse proxies in front of the app whose X-Forwarded-For/-Proto/-Host are trusted (0 = none), so that
# rate limits and the audit log see the client's address. Never more than exist: clients could forge it.
PROXY_COUNT = 0
# Create or migrate the database schema on start (turn off when several processes start at once).
AUTO_MIGRATE = True
# Name shown in the page header and in mails.
APP_NAME = "KI-Post"
# Default language and time zone of the interface and documents.
BABEL_DEFAULT_LOCALE = "de"
BABEL_DEFAULT_TIMEZONE = "Europe/Berlin"
# Largest accepted upload in bytes (imports, letter templates).
MAX_CONTENT_LENGTH = 10 * 1024 * 1024
# Free disk space in MB below which /healthz answers 503 (SQLite folder, .eml folder without SMTP), before writes fail.
HEALTHZ_MIN_FREE_MB = 50

# How passwords are hashed (werkzeug method string). scrypt is the strong default; the test suite
# sets a cheap method because it creates hundreds of accounts.
PASSWORD_HASH_METHOD = "scrypt"

# --- Settings edited in the browser (Verwaltung → Einstellungen) ----------------------------------
# Seconds after which a process reads the settings stored in the database again (the saving process at once).
SETTINGS_REFRESH_SECONDS = 5.0
# Fernet key (urlsafe base64, 32 bytes) for the passwords stored there; empty = instance/settings_key, created on first use.
SETTINGS_KEY = ""

# --- Sessions and login -------------------------------------------------------------------
# Send the session cookie over HTTPS only (set true behind TLS).
SESSION_COOKIE_SECURE = False
# Login attempts allowed per client address.
LOGIN_RATE_LIMIT = "10 per minute"
# Failed login attempts allowed per account (counted per entered e-mail address, whether or not an
# account exists, so the answer tells nobody which addresses have one); then every attempt for that
# address is refused until the period is over, also with the right password.
LOGIN_ACCOUNT_RATE_LIMIT = "5 per 15 minutes"
# Storage of rate-limit counters: memory:// (one process) or redis://127.0.0.1:6379/0 (several).
RATELIMIT_STORAGE_URI = "memory://"
# Minutes without any request after which a staff session ends (each request restarts the count).
SESSION_MINUTES = 480
# Hours after the login after which a session ends however active it is (must exceed SESSION_MINUTES).
SESSION_MAX_HOURS = 12

# --- Mail (SMTP) --------------------------------------------------------------------------
# SMTP host; empty = no sending, mails are written as .eml files into OUTBOX_DIR instead.
MAIL_SERVER = ""
# SMTP port (587 with STARTTLS, 465 with SSL, 25 plain).
MAIL_PORT = 587
# Upgrade the connection with STARTTLS.
MAIL_USE_TLS = True
# Connect with SSL/TLS from the start (port 465).
MAIL_USE_SSL = False
# PEM file with the CA certificate(s) of an internal CA that signed the SMTP server's certificate;
# empty = the system's trust store. The certificate is always verified (STARTTLS and SSL).
MAIL_CA_FILE = ""
# SMTP login name; empty = no login.
MAIL_USERNAME = ""
# SMTP password.
MAIL_PASSWORD = ""
# Sender: the functional mailbox, e.g. "MAGS NRW – Veranstaltungen <veranstaltungen@example.org>".
MAIL_DEFAULT_SENDER = "KI-Post <ki-post@localhost>"
# Optional Reply-To address for all mails.
MAIL_REPLY_TO = ""
# Messages per minute the worker sends (0 = unlimited; Exchange Online allows about 30).
MAIL_RATE_PER_MINUTE = 30
# Messages per day at most (0 = unlimited).
MAIL_DAILY_CAP = 0
# Seconds to wait for the SMTP server.
MAIL_TIMEOUT = 30
# Folder for .eml files when no SMTP server is configured; empty = instance/postausgang.
OUTBOX_DIR = ""
# Hours to keep retrying temporary failures before a message counts as failed.
MAIL_RETRY_HOURS = 24
# Seconds before the first retry of a temporary failure; doubles with every attempt.
MAIL_RETRY_BASE_SECONDS = 60.0
# Longest wait between two retries, in seconds.
MAIL_RETRY_MAX_SECONDS = 3600.0
# Seconds without a heartbeat after which a sending process counts as dead (its message becomes "unklar");
# never less than 4 × MAIL_TIMEOUT.
OUTBOX_WORKER_STALE_SECONDS = 120.0
# Failures in a row after which a mailing pauses itself.
MAIL_PAUSE_AFTER_FAILURES = 10
# Run one sending thread inside the web process (embedded default; false when separate workers run).
EMBEDDED_WORKER = True
# Seconds without progress after which a letter job ("Briefe erstellen" in the background) counts as
# abandoned and is marked failed; a PDF conversion reports no progress while LibreOffice works.
LETTER_JOB_STALE_SECONDS = 900.0

# --- Events ---------------------------------------------------------------------------------
# Submitted answers per client address on the public answer page.
RSVP_RATE_LIMIT = "30 per minute"
# How long a personal "Angaben prüfen" link works (days); a mail reuses a link while more than half is left.
SELFSERVICE_LINK_DAYS = 60
# Hours within which a second reminder for the same event must be confirmed explicitly (0 = never ask).
REMINDER_WARN_HOURS = 72
# An automatic reminder due at or after this hour (German time) goes at 9:00 the same day instead: a
# deadline "bis 23:59 Uhr" would otherwise remind people late at night. 24 = exactly at the due time.
AUTO_REMINDER_EVENING_HOUR = 18

# --- IMAP (answers from calendar clients) ---------------------------------------------------
# IMAP host of the functional mailbox; empty = no polling.
IMAP_SERVER = ""
# IMAP port (993 with SSL).
IMAP_PORT = 993
# Connect with SSL.
IMAP_USE_SSL = True
# PEM file with the CA certificate(s) of an internal CA that signed the IMAP server's certificate;
# empty = the system's trust store. The certificate is always verified.
IMAP_CA_FILE = ""
# IMAP login name.
IMAP_USERNAME = ""
# IMAP password.
IMAP_PASSWORD = ""
# Folder to read replies from.
IMAP_FOLDER = "INBOX"

# --- Documents ------------------------------------------------------------------------------
# LibreOffice binary for PDF conversion; empty = look for soffice/libreoffice on PATH.
SOFFICE_PATH = ""
# LibreOffice processes kept running between PDF jobs per app process (a job's letters are split among
# them); 0 = a fresh LibreOffice for every job (about 2 s more per job).
SOFFICE_WARM_PROCESSES = min(os.cpu_count() or 1, 4)
# Seconds after the last PDF job until the kept processes end (0 = keep them until the app ends).
SOFFICE_WARM_IDLE_SECONDS = 600
# poppler's pdftoppm for the preview's page images; empty = look for it on PATH.
PDFTOPPM_PATH = ""
# Folder of the preview's cached DOCX/PDF/PNG files; empty = "vorschau" in the instance folder.
PREVIEW_CACHE_DIR = ""
# Seconds a preview waits for its turn at LibreOffice and for the conversion itself.
PREVIEW_TIMEOUT = 60
# Letters kept in the preview cache; the oldest are removed (and made again when asked for).
PREVIEW_CACHE_LETTERS = 500
# Calendar replies uploaded in the browser: files per upload and bytes per file (MAX_CONTENT_LENGTH bounds the whole).
REPLY_UPLOAD_MAX_FILES = 50
REPLY_UPLOAD_MAX_BYTES = 2 * 1024 * 1024

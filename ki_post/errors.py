"""The one exception root of KI-Post. Messages are German and safe to show to users."""


class KiPostError(Exception):
    """A problem the user can understand and fix; ``str(error)`` is the German message."""


class NotFound(KiPostError):
    pass


class ValidationError(KiPostError):
    """Bad input; ``field`` names the form field it belongs to, if any."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


class RowError(ValidationError):
    """A problem in one row of an imported file; ``row`` is the row number as the spreadsheet shows it."""

    def __init__(self, row: int, message: str, field: str | None = None):
        super().__init__(f"Zeile {row}: {message}", field)
        self.row = row
        self.reason = message

"""Helpers shared by all forms."""
from flask_wtf import FlaskForm

from .errors import ValidationError


def apply_error(form: FlaskForm, error: ValidationError) -> None:
    """Show a service's validation error at its field, or above the form."""
    field = getattr(form, error.field, None) if error.field else None
    if field is not None:
        field.errors = [*field.errors, str(error)]
    else:
        form.form_errors.append(str(error))

"""Entry point: `flask --app app …` and `gunicorn app:app`."""
from ki_post import create_app

app = create_app()

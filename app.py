"""Entry point: `flask --app app …` and `gunicorn app:app`."""
from ki_post import create_app, prepare_instance

app = prepare_instance(create_app())

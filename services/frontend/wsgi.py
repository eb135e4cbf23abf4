"""gunicorn -c python:ticketing_common.gunicorn_conf frontend.wsgi:app"""
from frontend import create_app

app = create_app()

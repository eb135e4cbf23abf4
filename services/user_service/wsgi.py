"""gunicorn -c python:ticketing_common.gunicorn_conf user_service.wsgi:app"""
from user_service import create_app

app = create_app()

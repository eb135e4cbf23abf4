"""python -m event_catalog.migrate && gunicorn -c python:ticketing_common.gunicorn_conf event_catalog.wsgi:app"""
from event_catalog import create_app

app = create_app()

"""python -m booking_service.migrate && gunicorn -c python:ticketing_common.gunicorn_conf booking_service.wsgi:app

The outbox relay runs beside it as ``python -m booking_service.relay`` (or set OUTBOX_RELAY=embedded).
"""
from booking_service import create_app

app = create_app()

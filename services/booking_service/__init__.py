"""booking-service: atomic inventory reservation in PostgreSQL plus a transactional outbox to Kafka."""
from booking_service.app import create_app

__all__ = ["create_app"]

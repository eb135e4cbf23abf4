"""user-service: users in DynamoDB table ``ticket-booking-users`` (key ``userId``)."""
from user_service.app import create_app

__all__ = ["create_app"]

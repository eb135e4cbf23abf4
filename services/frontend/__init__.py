"""frontend: the API gateway of DESIGN.md and the browser UI it serves."""
from frontend.app import create_app

__all__ = ["create_app"]

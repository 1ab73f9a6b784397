"""The admin REST API (FastAPI): routers translate HTTP to service calls and back."""

from recaudo.api.app import create_app

__all__ = ["create_app"]

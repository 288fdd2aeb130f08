"""The ASGI entry point uvicorn imports: settings from the environment."""

from tactful.service.app import create_app

app = create_app()

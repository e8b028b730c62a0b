"""HTTP API (FastAPI). Build it with ``accord.api.app.create_app(app)``; nothing is created at import time."""

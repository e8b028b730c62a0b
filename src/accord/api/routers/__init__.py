"""One router per resource; ``accord.api.app.create_app`` mounts them under ``/v1``."""

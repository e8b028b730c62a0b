"""Local marketplace sandbox: :func:`accord.sandbox.app.create_app` (ASGI), :func:`accord.sandbox.server.serve`."""

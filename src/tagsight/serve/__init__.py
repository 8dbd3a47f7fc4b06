"""The HTTP server over the apps (``tagsight serve``): FastAPI routes, micro-batching, limits, metrics.

``create_app(apps, settings)`` builds the ASGI application from ``name -> App``; every failure a
client can cause is a 4xx with a JSON reason code (``tagsight.serve.errors``).
"""

from typing import Any

from tagsight.serve.settings import ServeSettings

__all__ = ["ServeSettings", "create_app"]


def __getattr__(name: str) -> Any:  # create_app imports FastAPI: only when asked for
    if name == "create_app":
        from tagsight.serve.app import create_app

        return create_app
    raise AttributeError(name)

"""The HTTP layer: the Starlette application, its routes, the dashboard and how it is served."""

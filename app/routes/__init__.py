"""HTTP routes, one module per resource; `main.create_app` includes their routers."""

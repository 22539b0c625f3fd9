"""Blueprints of the web UI, one module per area; each is listed in ``webui.app.BLUEPRINTS``."""

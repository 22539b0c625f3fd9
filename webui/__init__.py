"""The web UI: Flask app factory and one blueprint per area."""

"""`make loadtest`: gunicorn + PostgreSQL + Redis on loopback, driven by locust."""

"""WSGI entry for gunicorn: `gunicorn -k geventwebsocket.gunicorn.workers.GeventWebSocketWorker -w 1 wsgi:app`.

Several hub processes share one exam through PostgreSQL (DATABASE_URL) and Redis
(REDIS_URL); see the README's Production section.
"""
from server import realtime

realtime.patch()

from server import create_app  # noqa: E402

app = create_app()
realtime.begin_serving(app)  # the exam ticker, answer and analysis workers, collector policy

import multiprocessing
import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", multiprocessing.cpu_count() * 2))
# A sync worker serves one connection until its client has read the whole answer: a
# client that downloads a streamed export slowly, or stops reading, would keep it from
# serving anyone else until the timeout kills it mid-export. A gthread worker gives each
# request one of its threads, so a slow reader holds a thread, while the worker's main
# loop keeps accepting, answering on the other threads and sending its heartbeat.
# config.workers.ThreadWorker is gthread whose requests go to the most recently idle
# thread, which keeps the threads a steady load needs, and their database connections,
# warm (bench/README.md).
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "config.workers.ThreadWorker")
# Each thread keeps a database connection of its own: a host opens up to
# workers x threads connections to PostgreSQL. gunicorn runs a sync worker with more
# than one thread as gthread, so a sync worker gets one unless told otherwise.
threads = int(os.environ.get("GUNICORN_THREADS", "1" if worker_class == "sync" else "4"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
keepalive = 5
accesslog = "-"
# Exports stream for a long time; a request must not be cut off by a worker recycle.
graceful_timeout = 60

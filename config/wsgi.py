import os

from django.core.wsgi import get_wsgi_application

from config.checks import start_or_refuse

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_wsgi_application()
# Django's handler runs no system checks: without this, a server missing its keys would
# serve. Raising here fails gunicorn's worker boot, and gunicorn then exits.
start_or_refuse()

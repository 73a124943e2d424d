import os

from django.core.asgi import get_asgi_application

from config.checks import start_or_refuse

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
application = get_asgi_application()
# As in config.wsgi: Django's handler runs no system checks.
start_or_refuse()

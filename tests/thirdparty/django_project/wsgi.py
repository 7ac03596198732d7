"""The WSGI entry point, as ``django-admin startproject`` writes it: the same project, blocking."""

from __future__ import annotations

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.thirdparty.django_project.settings")
application = get_wsgi_application()

"""Settings for the compatibility project: only what the views need, nothing that needs a database.

Sessions live in signed cookies (no session table), CSRF in a cookie (Django's default), and no
``FORCE_SCRIPT_NAME``: the script prefix must come from the server (``root_path`` under ASGI,
``SCRIPT_NAME`` under WSGI), which is what the sub-path tests check.
"""

from __future__ import annotations

SECRET_KEY = "tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.thirdparty.django_project.urls"
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.middleware.http.ConditionalGetMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
SESSION_ENGINE = "django.contrib.sessions.backends.signed_cookies"
USE_TZ = True

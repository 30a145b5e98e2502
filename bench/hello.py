"""A hello-world Django application: the yardstick's ASGI target (``bench/yardstick.py``).

What ``django-admin startproject`` makes, with one view answering ``Hello, world`` as text:
the default middleware, no database, DEBUG off. Not part of Passline: it measures the machine
a benchmark ran on, so that runs of different days (and machines) can be compared.
"""

from __future__ import annotations

from django.conf import settings
from django.http import HttpResponse
from django.urls import path

settings.configure(
    DEBUG=False,
    SECRET_KEY="hello-world-yardstick",  # nothing is signed: a fixed key is enough
    ALLOWED_HOSTS=["127.0.0.1", "localhost"],
    ROOT_URLCONF=__name__,
    INSTALLED_APPS=[
        "django.contrib.auth",
        "django.contrib.contenttypes",
        "django.contrib.sessions",
        "django.contrib.messages",
    ],
    MIDDLEWARE=[
        "django.middleware.security.SecurityMiddleware",
        "django.contrib.sessions.middleware.SessionMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.csrf.CsrfViewMiddleware",
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "django.contrib.messages.middleware.MessageMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ],
    DATABASES={},
    LOGGING_CONFIG=None,
)


def hello(request):
    return HttpResponse("Hello, world", content_type="text/plain")


urlpatterns = [path("", hello)]

from django.core.asgi import get_asgi_application  # noqa: E402 - after settings.configure

application = get_asgi_application()

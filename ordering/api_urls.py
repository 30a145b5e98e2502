from django.urls import path

from ordering.api import api

urlpatterns = [path("", api.urls)]

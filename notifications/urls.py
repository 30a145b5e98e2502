from django.urls import path

from notifications import views

urlpatterns = [
    path("account/verify/", views.verify_addresses, name="verify_addresses"),
    path("account/verify/email/<str:token>/", views.verify_email, name="verify_email"),
]

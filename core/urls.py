from django.urls import path

from . import profile_views

urlpatterns = [
    path("accounts/profile/", profile_views.profile, name="profile"),
]

"""The URLconf: named routes, so every URL a test checks is built by ``reverse()``."""

from __future__ import annotations

from django.urls import path

from tests.thirdparty.django_project import views

urlpatterns = [
    path("", views.index, name="index"),
    path("items/<int:item_id>/", views.item, name="item"),
    path("greet/<str:name>/", views.greet, name="greet"),
    path("form/", views.form, name="form"),
    path("thanks/<str:name>/", views.thanks, name="thanks"),
    path("visits/", views.visits, name="visits"),
    path("stream/<str:token>/", views.stream, name="stream"),
    path("release/<str:token>/", views.release, name="release"),
    path("outcome/<str:token>/", views.outcome, name="outcome"),
    path("static/base.css", views.static_file, name="static-file"),
    path("upload/", views.upload, name="upload"),
    path("files/", views.files, name="files"),
    path("async/", views.async_view, name="async"),
    path("meta/", views.meta, name="meta"),
    path("latin1/", views.latin1_header, name="latin1"),
]

"""The compliance officer's pages (namespace ``compliance``)."""

from django.urls import path

from compliance import views

app_name = "compliance"

urlpatterns = [
    path("", views.home, name="home"),
    path("rules/", views.rules, name="rules"),
    path("denied-contacts/", views.denied_contacts, name="denied_contacts"),
    path("overrides/", views.overrides, name="overrides"),
    path("overrides/requests/", views.override_requests, name="override_requests"),
    path("flags/", views.flags, name="flags"),
    path("flags/<int:pk>/", views.flag_review, name="flag_review"),
    path("pii-reveals/", views.pii_reveals, name="pii_reveals"),
    path("audit/", views.audit, name="audit"),
    path("audit/verify/", views.audit_verify, name="audit_verify"),
    path("export/", views.export, name="export"),
    path("export/<int:pk>/", views.export_download, name="export_download"),
]

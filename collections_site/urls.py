from django.contrib import admin
from django.urls import path
from django.views.generic import RedirectView

from collections_site.health import healthz, readyz

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("admin/", admin.site.urls),
]

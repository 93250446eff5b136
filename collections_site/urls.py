from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView

from collections_site.health import healthz, readyz

urlpatterns = [
    path("", RedirectView.as_view(pattern_name="admin:index", permanent=False)),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("admin/", admin.site.urls),
    path("api/", include("api.urls")),
]


def handler500(request, *args, **kwargs):
    """An API path gets problem+json even for a bug; everything else Django's own page."""
    if request.path.startswith("/api/"):
        from api.problems import api_server_error

        return api_server_error(request)
    from django.views.defaults import server_error

    return server_error(request)

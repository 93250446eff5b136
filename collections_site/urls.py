from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from collections_site import views
from collections_site.health import healthz, readyz

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/preferences/", views.preferences, name="preferences"),
    path("language/", views.switch_language, name="switch_language"),
    path("work/", include("debt_collections.urls")),
    path("compliance/", include("compliance.urls")),
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

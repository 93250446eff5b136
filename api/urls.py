"""``/api/v1/`` (the partner API), ``/api/schema/`` (OpenAPI 3) and ``/api/docs/`` (Swagger UI, assets
served from drf-spectacular-sidecar, no CDN)."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView
from rest_framework.routers import DefaultRouter

from api.problems import api_not_found
from api.views import (
    audit,
    borrowers,
    cases,
    contact_checks,
    loans,
    payments,
    referrals,
    restructurings,
    webhooks,
)

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
for module in (borrowers, webhooks, cases, restructurings, referrals, contact_checks, audit, loans, payments):
    module.register(router)

urlpatterns = [
    path("v1/", include(router.urls)),
    path("schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("redoc/", SpectacularRedocView.as_view(url_name="api-schema"), name="api-redoc"),
    re_path(r"^.*$", api_not_found),
]

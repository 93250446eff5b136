"""The back office's case-work pages (namespace ``work``). Each view module lists its own routes."""

from debt_collections.views import actions, case, dashboards, supervisor, worklist

app_name = "work"

urlpatterns = [
    *worklist.urlpatterns,
    *case.urlpatterns,
    *actions.urlpatterns,
    *supervisor.urlpatterns,
    *dashboards.urlpatterns,
]

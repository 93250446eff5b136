from django.http import HttpResponse
from django.urls import path


def stub(request, **kwargs):
    return HttpResponse("supervisor: to be built")


urlpatterns = [
    path("approvals/", stub, name="approvals"),
    path("workload/", stub, name="workload"),
    path("overrides/", stub, name="overrides"),
    path("cases/<int:pk>/override-request/", stub, name="override_request"),
]

from django.http import HttpResponse
from django.urls import path


def dashboards(request):
    return HttpResponse("dashboards: to be built")


urlpatterns = [path("dashboards/", dashboards, name="dashboards")]

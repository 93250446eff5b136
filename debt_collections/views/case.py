from django.http import HttpResponse
from django.urls import path


def case_detail(request, pk):
    return HttpResponse("case: to be built")


urlpatterns = [path("cases/<int:pk>/", case_detail, name="case")]

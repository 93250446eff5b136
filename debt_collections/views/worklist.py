from django.http import HttpResponse
from django.urls import path


def worklist(request):
    return HttpResponse("worklist: to be built")


urlpatterns = [path("", worklist, name="worklist")]

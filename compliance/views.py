from django.http import HttpResponse


def home(request):
    return HttpResponse("compliance: to be built")

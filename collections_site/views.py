"""The back office's own pages outside the apps: home, preferences and the language switch."""

from __future__ import annotations

import zoneinfo

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpResponseRedirect
from django.shortcuts import redirect, render
from django.utils import translation
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_POST

from collections_site.middleware import StaffPreferenceMiddleware
from debt_collections.models import StaffPreference

# Where each role starts: the first page its rights open.
HOME_PAGES = (
    ("compliance.view_auditevent", "compliance:home"),
    ("debt_collections.view_case", "work:worklist"),
)


@login_required
def home(request):
    user = request.user
    if user.has_perm("debt_collections.reassign_case") and not user.team_memberships.exists():
        return redirect("work:approvals")
    for perm, name in HOME_PAGES:
        if user.has_perm(perm):
            return redirect(name)
    if user.is_staff:
        return redirect("admin:index")
    return render(request, "no_role.html", status=403)


def _safe_next(request, fallback: str) -> str:
    target = request.POST.get("next") or request.META.get("HTTP_REFERER") or fallback
    if url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def _remember(request, **fields) -> None:
    StaffPreference.objects.update_or_create(user=request.user, defaults=fields)
    request.session.pop(StaffPreferenceMiddleware.SESSION_KEY, None)


@require_POST
def switch_language(request):
    """The header's language switch: sets the cookie (also before sign-in) and, for a signed-in user,
    keeps the choice in their preferences."""
    language = request.POST.get("language", "")
    if language not in dict(settings.LANGUAGES):
        messages.error(request, _("Unknown language."))
        return redirect(_safe_next(request, "/"))
    response = HttpResponseRedirect(_safe_next(request, "/"))
    response.set_cookie(
        settings.LANGUAGE_COOKIE_NAME,
        language,
        max_age=settings.LANGUAGE_COOKIE_AGE,
        samesite="Lax",
        secure=request.is_secure(),
    )
    if request.user.is_authenticated:
        _remember(request, language=language)
    translation.activate(language)
    return response


TIME_ZONES = sorted(zoneinfo.available_timezones() - {"localtime", "Factory"})


class PreferenceForm(forms.Form):
    time_zone = forms.ChoiceField(
        label=gettext_lazy("Time zone"),
        choices=[("", gettext_lazy("The site's default"))] + [(name, name) for name in TIME_ZONES],
        required=False,
        help_text=gettext_lazy("Every time in the back office is shown in this zone."),
    )
    language = forms.ChoiceField(
        label=gettext_lazy("Language"),
        choices=[("", gettext_lazy("As the browser asks"))] + list(settings.LANGUAGES),
        required=False,
    )


@login_required
def preferences(request):
    current = StaffPreference.objects.filter(user=request.user).first()
    initial = {"time_zone": current.time_zone, "language": current.language} if current else {}
    form = PreferenceForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        _remember(request, **form.cleaned_data)
        messages.success(request, _("Preferences saved."))
        response = redirect("preferences")
        if form.cleaned_data["language"]:
            response.set_cookie(settings.LANGUAGE_COOKIE_NAME, form.cleaned_data["language"], samesite="Lax")
        else:
            response.delete_cookie(settings.LANGUAGE_COOKIE_NAME)
        return response
    return render(request, "preferences.html", {"form": form})

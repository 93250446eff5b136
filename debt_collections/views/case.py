"""The case page (``/work/cases/<pk>/``) and the audited reveal of one masked value on it.

The page reads through ``debt_collections.selectors`` (a fixed number of queries, however many loans,
payments and contacts the borrower has). Its side column carries the borrower and the case actions
(``debt_collections/actions/panel.html``, from ``debt_collections.views.actions``).

Reveal (``POST cases/<pk>/reveal/``) unmasks one value through ``compliance.pii.pii_reveal``: it needs
``compliance.reveal_pii`` (403 without it; the button is not shown either) and a reason, and writes the
audit event. An htmx request gets the value (or the form with its errors, 422) in place of the masked
one; a plain form post gets a page of its own.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from compliance.pii import REASON_MAX_LENGTH, can_reveal, pii_describe, pii_reveal
from debt_collections import selectors
from debt_collections.visibility import require

VIEW_PERMISSION = "debt_collections.view_case"


@login_required
@require_GET
def case_detail(request, pk):
    user = request.user
    require(user, VIEW_PERMISSION)
    case = selectors.case_detail(user=user, pk=pk)
    as_of = selectors.business_date()
    context = {"case": case, "as_of": as_of, **selectors.case_page(case, user=user, as_of=as_of)}
    return render(request, "debt_collections/case.html", context)


class RevealForm(forms.Form):
    field = forms.CharField(max_length=40, widget=forms.HiddenInput)
    reason = forms.CharField(
        label=gettext_lazy("Why do you need to see it?"),
        max_length=REASON_MAX_LENGTH,
        strip=True,
    )


def _add_service_errors(form: forms.Form, exc: ValidationError) -> None:
    if not hasattr(exc, "error_dict"):
        form.add_error(None, exc)
        return
    for field, errors in exc.error_dict.items():
        form.add_error(field if field in form.fields else None, errors)


@login_required
@require_POST
@never_cache
def case_reveal(request, pk):
    user = request.user
    require(user, VIEW_PERMISSION)
    case = selectors.case_detail(user=user, pk=pk)
    if not can_reveal(user):
        raise PermissionDenied(_("Revealing personal data needs the permission to reveal it."))
    borrower = case.loan.borrower
    form = RevealForm(request.POST)
    value = None
    if form.is_valid():
        try:
            value = pii_reveal(
                borrower=borrower,
                field=form.cleaned_data["field"],
                actor=user,
                reason=form.cleaned_data["reason"],
            )
        except ValidationError as exc:
            _add_service_errors(form, exc)
    field = form.cleaned_data.get("field") or request.POST.get("field", "")
    try:
        label, masked = pii_describe(borrower=borrower, field=field)
        pii = selectors.MaskedValue(field=field, label=label, masked=masked)
    except ValidationError as exc:
        if not form.errors:
            _add_service_errors(form, exc)
        pii = None
    context = {"case": case, "pii": pii, "value": value, "form": form, "can_reveal": True}
    ok = value is not None
    if getattr(request, "htmx", None):
        return render(request, "debt_collections/case/pii.html", context, status=200 if ok else 422)
    return render(request, "debt_collections/case/reveal.html", context)


urlpatterns = [
    path("cases/<int:pk>/", case_detail, name="case"),
    path("cases/<int:pk>/reveal/", case_reveal, name="case_reveal"),
]

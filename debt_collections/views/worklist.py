"""The worklist (``/work/``): a collector's open cases by priority, fifty a page, with filters, a
search and, for every row, whether the borrower may be called right now.

Reads only (``debt_collections.selectors``). The filter form updates the results in place with htmx
(the partial ``worklist/results.html``) and pushes the URL, so a reload, a bookmark or the pages
keep the filters.
"""

from __future__ import annotations

from django import forms
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.shortcuts import render
from django.urls import path
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from debt_collections import selectors
from debt_collections.models import StageChoices
from debt_collections.visibility import require
from loans.models import Bucket

RESULTS_ID = "worklist-results"
# What "now" is for the contact badges and "due today" (a function, so a test can fix the moment).
clock = timezone.now

PROMISE_DUE_HELP = _(
    "An instalment of the open promise falls due today and the payments since the promise was made "
    "do not cover it yet."
)
CALLBACK_DUE_HELP = _(
    "The latest contact on the case is the borrower's request to be called back, and the call-back "
    "day (the case's next action date) is today or has passed. Logging the call back clears it."
)
SEARCH_HELP = _(
    "A name matches from its start; a phone number (in any format) or e-mail address and a loan "
    "reference must match exactly."
)


class WorklistFilterForm(forms.Form):
    scope = forms.ChoiceField(required=False)
    q = forms.CharField(label=_("Search"), required=False, max_length=100, help_text=SEARCH_HELP)
    stage = forms.ChoiceField(
        label=_("Stage"), required=False, choices=[("", _("Every stage")), *StageChoices.choices]
    )
    bucket = forms.ChoiceField(
        label=_("Bucket"), required=False, choices=[("", _("Every bucket")), *Bucket.choices]
    )
    promise_due = forms.BooleanField(label=_("Promise due today"), required=False, help_text=PROMISE_DUE_HELP)
    callback = forms.BooleanField(label=_("Callback due"), required=False, help_text=CALLBACK_DUE_HELP)

    def __init__(self, *args, scopes: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scope"].choices = [(scope, selectors.Scope.LABELS[scope]) for scope in scopes]
        self.fields["q"].widget.attrs.update(
            {
                "type": "search",
                "data-search": "",
                "placeholder": _("Name, phone, e-mail or loan ref"),
                "autocomplete": "off",
                "aria-describedby": "worklist-search-help",
            }
        )

    def filters(self) -> dict:
        """The valid filters (an invalid one, say an unknown stage, is left out and shown as an error)."""
        self.is_valid()
        data = self.cleaned_data
        return {
            "stage": data.get("stage") or "",
            "bucket": data.get("bucket") or "",
            "promise_due": bool(data.get("promise_due")),
            "callback": bool(data.get("callback")),
            "search": data.get("q") or "",
        }


@login_required
@require_GET
@vary_on_headers("HX-Request", "HX-Target")
def worklist(request):
    user = request.user
    require(user, "debt_collections.view_case")
    scopes = selectors.worklist_scopes(user)
    form = WorklistFilterForm(request.GET, scopes=scopes)
    filters = form.filters()
    scope = form.cleaned_data.get("scope") or selectors.worklist_default_scope(user)
    now = clock()
    as_of = selectors.business_date(now)
    ids = selectors.worklist_case_ids(user=user, scope=scope, as_of=as_of, **filters)
    page = Paginator(ids, selectors.WORKLIST_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = selectors.worklist_rows(list(page.object_list), as_of=as_of, at=now)
    context = {
        "form": form,
        "scope": scope,
        "tabs": [{"scope": s, "label": selectors.Scope.LABELS[s], "current": s == scope} for s in scopes],
        "filtered": any(filters.values()),
        "page": page,
        "rows": rows,
        "now": now,
        "as_of": as_of,
        "show_assignee": scope != selectors.Scope.MINE,
        "results_id": RESULTS_ID,
    }
    htmx = getattr(request, "htmx", None)
    if htmx and htmx.target == RESULTS_ID and not htmx.history_restore_request:
        return render(request, "debt_collections/worklist/results.html", context)
    return render(request, "debt_collections/worklist.html", context)


urlpatterns = [path("", worklist, name="worklist")]

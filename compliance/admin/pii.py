"""Admin screens: personal data. The borrower page's "reveal" link: one masked value shown once, to a
user with ``compliance.reveal_pii``, after they give a reason; audited (``compliance.pii.pii_reveal``).

The loan book's admin masks everything and has a slot for this view (``BorrowerAdmin.install_reveal``):
``loans`` imports no other app, so the compliance app, which owns the permission and the audit log,
plugs the view in. The page is not cached (``admin_view`` sends ``Cache-Control: no-store``) and the
value is in that one response only: reloading it asks for a reason again.
"""

from __future__ import annotations

import functools

from django import forms
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404
from django.template import engines
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from compliance.pii import REASON_MAX_LENGTH, REVEAL_PERMISSION, can_reveal, pii_describe, pii_reveal
from loans.admin import BorrowerAdmin

PAGE = """{% extends "admin/base_site.html" %}
{% block breadcrumbs %}<div class="breadcrumbs">
<a href="{{ index_url }}">{{ home }}</a>
&rsaquo; <a href="{{ changelist_url }}">{{ opts.verbose_name_plural|capfirst }}</a>
&rsaquo; <a href="{{ change_url }}">{{ original }}</a> &rsaquo; {{ title }}
</div>{% endblock %}
{% block content %}<div id="content-main">
<p>{{ what|capfirst }}: <strong>{{ masked }}</strong></p>
{% if revealed %}
<p class="pii-revealed"><strong>{{ revealed }}</strong></p>
<p class="help">{{ recorded }}</p>
{% else %}
<form method="post">{% csrf_token %}
{{ form.as_div }}
<div class="submit-row"><input type="submit" class="default" value="{{ submit }}"></div>
</form>
{% endif %}
<p><a href="{{ change_url }}">{{ back }}</a></p>
</div>{% endblock %}
"""


@functools.cache
def _page():
    return engines["django"].from_string(PAGE)


class RevealForm(forms.Form):
    reason = forms.CharField(
        label=gettext_lazy("Why do you need to see it?"),
        max_length=REASON_MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=gettext_lazy("Kept in the audit log with your name."),
    )


def reveal_view(model_admin, request, object_id: str, field: str):
    """GET: what would be revealed (masked) and a reason box; POST: the value, once, audited."""
    borrower = model_admin.get_object(request, unquote(object_id))
    if borrower is None:
        raise Http404
    if not model_admin.has_view_or_change_permission(request, borrower) or not can_reveal(request.user):
        raise PermissionDenied
    try:
        what, masked = pii_describe(borrower=borrower, field=field)
    except ValidationError:
        raise Http404 from None
    revealed = ""
    form = RevealForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        try:
            revealed = pii_reveal(
                borrower=borrower, field=field, actor=request.user, reason=form.cleaned_data["reason"]
            )
        except ValidationError as exc:
            for name, messages in exc.message_dict.items():
                form.add_error(name if name in form.fields else None, messages)
    opts = model_admin.opts
    context = {
        **model_admin.admin_site.each_context(request),
        "title": _("Reveal personal data"),
        "opts": opts,
        "original": borrower,
        "what": what,
        "masked": masked,
        "revealed": revealed,
        "form": form,
        "home": _("Home"),
        "submit": _("Reveal"),
        "back": _("Back to the borrower"),
        "recorded": _("Shown once; this view is recorded in the audit log."),
        "index_url": reverse("admin:index", current_app=model_admin.admin_site.name),
        "changelist_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist"),
        "change_url": reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[borrower.pk]),
    }
    return TemplateResponse(request, _page(), context)


BorrowerAdmin.install_reveal(view=reveal_view, permission=REVEAL_PERMISSION)

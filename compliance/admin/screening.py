"""Admin screens: screening.

Lexicon terms are created and changed through ``lexicon_term_save``, so a bad regular expression or
a duplicate phrase is a form error and every edit is audited; they are switched off rather than
deleted, which keeps the audit trail whole. Screening flags are read-only; a compliance officer
closes them with the "mark reviewed" action, which goes through ``screening_flag_review``.
"""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from collections_site.admin_tools import ReadOnlyAdminMixin, RequestFormMixin, ServiceForm
from compliance.models import LexiconTerm, ScreeningFlag
from compliance.screening import LEXICON_FIELDS, lexicon_term_save, screening_flag_review


class LexiconTermForm(ServiceForm):
    """Creates or edits through ``lexicon_term_save`` (validated, audited)."""

    class Meta:
        model = LexiconTerm
        fields = list(LEXICON_FIELDS)

    def call_service(self, cleaned):
        return lexicon_term_save(
            term=self.instance if self.instance.pk else None,
            actor=self.request.user,
            **{name: cleaned[name] for name in LEXICON_FIELDS if name in cleaned},
        )

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk:
            cleaned["phrase"] = self.instance.phrase  # as the service tidied it
        return cleaned


@admin.register(LexiconTerm)
class LexiconTermAdmin(RequestFormMixin, SimpleHistoryAdmin):
    form = LexiconTermForm
    list_display = ["phrase", "language", "category", "is_regex", "is_active", "note"]
    list_filter = ["language", "category", "is_regex", "is_active"]
    search_fields = ["phrase", "note"]
    list_per_page = 100

    def save_model(self, request, obj, form, change):
        pass  # lexicon_term_save wrote it (and its audit event) in the form's clean()

    def has_delete_permission(self, request, obj=None):
        return False  # switch a term off instead: the edit is audited and the history stays


def _category_label(category: str) -> str:
    if category in LexiconTerm.Category.values:
        return str(LexiconTerm.Category(category).label)
    return category  # a category since removed from the code: show the stored value


class ReviewActionForm(admin.helpers.ActionForm):
    review_note = forms.CharField(required=False, max_length=500, label=_("review note"))


@admin.register(ScreeningFlag)
class ScreeningFlagAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    list_display = [
        "created_at",
        "source",
        "source_id",
        "categories",
        "short_text",
        "reviewed_by",
        "reviewed_at",
    ]
    list_filter = [("reviewed_at", admin.EmptyFieldListFilter), "source"]
    search_fields = ["source_id", "excerpt"]
    list_select_related = ["reviewed_by"]
    fields = [
        "source", "source_id", "highlighted_text", "matched_terms", "created_at", "reviewed_by",
        "reviewed_at", "review_note",
    ]  # fmt: skip
    readonly_fields = fields
    action_form = ReviewActionForm
    actions = ["mark_reviewed"]
    date_hierarchy = "created_at"

    def has_review_permission(self, request):
        return request.user.has_perm("compliance.review_screening_flags")

    @admin.display(description=_("categories"))
    def categories(self, obj):
        labels = []
        for match in obj.matches or []:
            category = match.get("category", "")
            label = (
                LexiconTerm.Category(category).label if category in LexiconTerm.Category.values else category
            )
            if label not in labels:
                labels.append(label)
        return ", ".join(str(label) for label in labels)

    @admin.display(description=_("text"))
    def short_text(self, obj):
        return obj.excerpt if len(obj.excerpt) <= 80 else obj.excerpt[:79] + "…"

    @admin.display(description=_("text"))
    def highlighted_text(self, obj):
        """The note with what matched marked; offsets index the stored text."""
        text, pieces, at = obj.excerpt, [], 0
        spans = sorted((m["start"], m["end"]) for m in obj.matches or [] if "start" in m and "end" in m)
        for start, end in spans:
            if start < at or end > len(text):
                continue  # overlapping matches: the first one is marked
            pieces.append((text[at:start], text[start:end]))
            at = end
        marked = format_html_join("", "{}<mark>{}</mark>", pieces)
        return format_html('<div style="white-space: pre-wrap">{}{}</div>', marked, text[at:])

    @admin.display(description=_("matches"))
    def matched_terms(self, obj):
        rows = []
        for match in obj.matches or []:
            category = match.get("category", "")
            label = (
                LexiconTerm.Category(category).label if category in LexiconTerm.Category.values else category
            )
            rows.append((label, match.get("text", ""), match.get("phrase", "")))
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}: “{}” ({})</li>", rows))

    @admin.action(description=_("Mark the selected flags reviewed"), permissions=["review"])
    def mark_reviewed(self, request, queryset):
        note = request.POST.get("review_note", "")
        reviewed = 0
        for flag in queryset.filter(reviewed_at__isnull=True):
            try:
                screening_flag_review(flag=flag, actor=request.user, note=note)
            except ValidationError as exc:
                self.message_user(request, "; ".join(exc.messages), messages.ERROR)
                return
            except PermissionDenied as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return
            reviewed += 1
        skipped = queryset.count() - reviewed
        self.message_user(request, _("%(n)s flags marked reviewed.") % {"n": reviewed}, messages.SUCCESS)
        if skipped:
            self.message_user(
                request, _("%(n)s flags were reviewed already.") % {"n": skipped}, messages.WARNING
            )

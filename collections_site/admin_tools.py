"""Admin plumbing shared by the apps: read-only screens, and forms that write through a service.

Writes that matter go through services (DESIGN.md section 3), so an admin form does not save a model
itself: ``ServiceForm.clean`` calls the service, inside the admin view's transaction (rolled back if
anything later fails), and the service's refusals show as form errors, never a 500.
"""

from django import forms
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext_lazy as _


class ReadOnlyAdminMixin:
    """Records that only services write (money, logs, runs): to be looked at, not edited."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ServiceForm(forms.ModelForm):
    """A model form whose ``clean`` writes through ``call_service(cleaned)``; the admin gives it
    ``request`` (``RequestFormMixin``). Field errors the form knows stay on their fields."""

    request = None

    def call_service(self, cleaned: dict):
        raise NotImplementedError

    def clean(self):
        cleaned = super().clean()
        if self.errors:
            return cleaned
        try:
            self.instance = self.call_service(cleaned)
        except ValidationError as exc:
            if hasattr(exc, "error_dict") and set(exc.error_dict) <= set(self.fields):
                raise
            raise ValidationError(exc.messages) from None
        except PermissionDenied as exc:
            raise ValidationError(str(exc) or _("You are not allowed to do this.")) from None
        return cleaned


class RequestFormMixin:
    """Hands the request to the admin's form (its service needs the acting user)."""

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"request": request})


class ServiceAddAdminMixin(RequestFormMixin):
    """Add-only screens whose ``ServiceForm`` wrote the record already; existing ones are read-only."""

    def save_model(self, request, obj, form, change):
        if not obj.pk:
            obj.save()

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return False

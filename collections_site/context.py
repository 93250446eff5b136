"""What every back-office page's layout needs: the navigation the user's rights allow."""

from __future__ import annotations

from django.urls import reverse
from django.utils.translation import gettext_lazy as _

# (label, url name, any of these permissions). A link shows only with one of them; every view checks
# its own rights again on the server.
NAVIGATION = (
    (_("Worklist"), "work:worklist", ("debt_collections.view_case",)),
    (
        _("Approvals"),
        "work:approvals",
        ("debt_collections.approve_restructuring", "debt_collections.approve_referral"),
    ),
    (_("Workload"), "work:workload", ("debt_collections.reassign_case",)),
    (_("Overrides"), "work:overrides", ("compliance.change_overriderequest",)),
    (_("Dashboards"), "work:dashboards", ("debt_collections.reassign_case", "compliance.view_auditevent")),
    (_("Compliance"), "compliance:home", ("compliance.view_auditevent",)),
)


def navigation(request):
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated or request.path.startswith("/api/"):
        return {}
    links = [
        {"label": label, "url": reverse(name)}
        for label, name, perms in NAVIGATION
        if any(user.has_perm(perm) for perm in perms)
    ]
    # The longest link the path starts with is the current section (/work/ is the worklist's prefix too).
    matching = [link for link in links if request.path.startswith(link["url"])]
    if matching:
        max(matching, key=lambda link: len(link["url"]))["active"] = True
    return {"nav_links": links, "show_admin": user.is_staff}

"""The dashboards (``/work/dashboards/``): six charts of the collections book, each with the table of
its numbers under it and a CSV download of the same rows (``/work/dashboards/<chart>.csv``).

For supervisors (``debt_collections.reassign_case``: the figures of the teams they supervise) and
compliance officers (``compliance.view_auditevent``: everything, as for superusers); everybody else
403. Reads only, through ``debt_collections.dashboards``; the filter form (period, month ends for the
snapshot charts, team, partner, currency) reloads the charts in place with htmx and pushes the URL.
A CSV download is an export of the book's figures: it writes an audit event.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from io import StringIO
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils import formats, timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET
from django.views.decorators.vary import vary_on_headers

from compliance.audit import audit_record
from compliance.models import AuditEventType
from debt_collections import dashboards as data
from debt_collections.models import PromiseToPay, StageChoices, Team
from debt_collections.visibility import reads_all_cases, require_any, supervised_teams
from loans.models import Bucket, Partner

DASHBOARD_PERMS = ("debt_collections.reassign_case", "compliance.view_auditevent")
CHARTS_ID = "dashboard-charts"
MAX_MONTHS = 24
TOP_COLLECTORS_CHARTED = 20

# "Today" for the ageing and the default period (a function, so a test can fix the day).
today = timezone.localdate


# --- the filter ------------------------------------------------------------------------------------


class DashboardFilterForm(forms.Form):
    start = forms.DateField(label=gettext_lazy("From"), widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(label=gettext_lazy("Until"), widget=forms.DateInput(attrs={"type": "date"}))
    months = forms.IntegerField(
        label=gettext_lazy("Month ends"),
        min_value=1,
        max_value=MAX_MONTHS,
        help_text=gettext_lazy("How many month ends the ageing trend and the roll rates cover."),
    )
    team = forms.TypedChoiceField(label=gettext_lazy("Team"), required=False, coerce=int, empty_value=None)
    partner = forms.TypedChoiceField(
        label=gettext_lazy("Partner"), required=False, coerce=int, empty_value=None
    )
    currency = forms.ChoiceField(label=gettext_lazy("Currency"))

    def __init__(self, *args, teams: list[Team], all_teams: bool, partners, currencies: list[str], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["team"].choices = [
            ("", _("All teams") if all_teams else _("All my teams")),
            *[(team.pk, team.name) for team in teams],
        ]
        self.fields["partner"].choices = [("", _("All partners")), *[(p.pk, p.name) for p in partners]]
        self.fields["currency"].choices = [(c, c) for c in currencies]
        self.fields["months"].widget.attrs.update({"size": 3})

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("start"), cleaned.get("end")
        if start and end:
            if start > end:
                self.add_error("end", _("The period must end on or after its first day."))
            elif (end - start).days + 1 > data.MAX_PERIOD_DAYS:
                self.add_error(
                    "start", _("The period can be at most %(days)d days.") % {"days": data.MAX_PERIOD_DAYS}
                )
            if end > today():
                self.add_error("end", _("The period cannot end after today."))
        return cleaned


@dataclass
class Scope:
    """What the user may see: every team (and loans no team holds), or the teams they supervise."""

    all_teams: bool
    teams: list[Team]

    @classmethod
    def of(cls, user) -> Scope:
        if reads_all_cases(user):
            return cls(True, list(Team.objects.order_by("name")))
        return cls(False, list(supervised_teams(user).order_by("name")))

    def team_ids(self, team_id: int | None) -> tuple[int, ...] | None:
        if team_id is not None:
            return (team_id,)
        return None if self.all_teams else tuple(team.pk for team in self.teams)

    def stages(self, team_ids: tuple[int, ...] | None) -> tuple[str, ...]:
        return tuple(t.stage for t in self.teams if t.stage and (team_ids is None or t.pk in team_ids))


def _filter_form(request, scope: Scope) -> tuple[DashboardFilterForm, list[str]]:
    currencies = data.currencies_in_use() or [settings.DEFAULT_CURRENCY]
    day = today()
    defaults = {
        "start": (day - timedelta(days=29)).isoformat(),
        "end": day.isoformat(),
        "months": "6",
        "currency": settings.DEFAULT_CURRENCY if settings.DEFAULT_CURRENCY in currencies else currencies[0],
    }
    given = {key: value for key, value in request.GET.items() if value != "" or key in ("team", "partner")}
    form = DashboardFilterForm(
        {**defaults, **given},
        teams=scope.teams,
        all_teams=scope.all_teams,
        partners=list(Partner.objects.order_by("name").only("pk", "name")),
        currencies=currencies,
    )
    return form, currencies


def _dashboard_filter(form: DashboardFilterForm, scope: Scope, currencies: list[str]) -> data.DashboardFilter:
    cleaned = form.cleaned_data
    return data.DashboardFilter(
        start=cleaned["start"],
        end=cleaned["end"],
        months=cleaned["months"],
        currency=cleaned["currency"],
        team_ids=scope.team_ids(cleaned.get("team")),
        partner_id=cleaned.get("partner"),
        several_currencies=len(currencies) > 1,
    )


def _query(form: DashboardFilterForm) -> str:
    cleaned = form.cleaned_data
    values = {
        "start": cleaned["start"].isoformat(),
        "end": cleaned["end"].isoformat(),
        "months": cleaned["months"],
        "currency": cleaned["currency"],
        "team": cleaned.get("team") or "",
        "partner": cleaned.get("partner") or "",
    }
    return urlencode(values)


def _access(request) -> Scope:
    require_any(request.user, *DASHBOARD_PERMS)
    return Scope.of(request.user)


# --- labels ----------------------------------------------------------------------------------------


def _bucket_label(bucket: str) -> str:
    return str(Bucket(bucket).label)


def _state_label(state: str) -> str:
    if state == data.CURRENT:
        return _("current")
    if state == data.PAID_OFF:
        return _("paid off")
    if state == data.WRITTEN_OFF:
        return _("written off")
    return _bucket_label(state)


def _short(day: date) -> str:
    return formats.date_format(day, "SHORT_DATE_FORMAT")


def _percent(ratio: Decimal | None) -> str:
    """A rate for a CSV cell: percent with two decimals, empty when there is nothing to rate."""
    return "" if ratio is None else f"{ratio * 100:.2f}"


def _cents(amount: Decimal) -> str:
    return f"{amount:.2f}"


# --- the charts: rows, chart data and CSV of each --------------------------------------------------


@dataclass
class Chart:
    slug: str
    title: str
    help: str
    table: str  # the template of its table
    charts: list[dict] = field(default_factory=list)  # one or more Chart.js specs (see charts.js)
    context: dict = field(default_factory=dict)
    wide: bool = False  # a wide table: the card takes the whole row

    @property
    def script_ids(self) -> list[str]:
        return [f"chart-{self.slug}-{i}" for i in range(len(self.charts))]

    @property
    def canvases(self) -> list[tuple[str, dict]]:
        return list(zip(self.script_ids, self.charts, strict=True))


def _dataset(label: str, values, **extra) -> dict:
    return {"label": label, "data": [None if v is None else str(v) for v in values], **extra}


def ageing_chart(f: data.DashboardFilter, day: date, dates: list[date]) -> Chart:
    now = data.arrears_ageing(f, today=day)
    trend = data.arrears_trend(f, dates)
    dates = sorted({row.as_of for row in trend})
    by_date = {(row.as_of, row.bucket): row for row in trend}
    charts = [
        {
            "type": "bar",
            "labels": [_bucket_label(row.bucket) for row in now],
            "datasets": [
                _dataset(_("Loans"), [row.loans for row in now], axis="y"),
                _dataset(_("Amount overdue"), [row.overdue for row in now], axis="y2"),
            ],
            "y": {"title": _("Loans"), "format": "count"},
            "y2": {"title": _("Amount overdue (%(currency)s)") % {"currency": f.currency}, "format": "money"},
        }
    ]
    if dates:
        charts.append(
            {
                "type": "bar",
                "stacked": True,
                "labels": [_short(d) for d in dates],
                "datasets": [
                    _dataset(
                        _bucket_label(b), [getattr(by_date.get((d, b)), "loans", 0) for d in dates], series=i
                    )
                    for i, b in enumerate(data.PAST_DUE_BUCKETS)
                ],
                "y": {"title": _("Loans in arrears at the month end"), "format": "count"},
                "palette": "buckets",
            }
        )
    return Chart(
        slug="ageing",
        title=_("Arrears ageing by bucket"),
        help=_(
            "Active loans past due today, per bucket: how many and the amount overdue (principal, "
            "interest, fees and penalty already due). Below, the loans in arrears at each month-end "
            "snapshot of the chosen months."
        ),
        table="debt_collections/dashboards/table_ageing.html",
        charts=charts,
        context={
            "now": [(_bucket_label(row.bucket), row) for row in now],
            "trend": [(d, [by_date.get((d, b)) for b in data.PAST_DUE_BUCKETS]) for d in dates],
            "buckets": [_bucket_label(b) for b in data.PAST_DUE_BUCKETS],
        },
    )


def roll_chart(f: data.DashboardFilter, dates: list[date]) -> Chart:
    rows = data.roll_rates(f, dates)
    matrix = data.roll_matrix(rows)
    forward = data.roll_forward(rows)
    to_dates = sorted({r.to_date for r in forward})
    by_key = {(r.to_date, r.bucket): r for r in forward}
    rolling = data.PAST_DUE_BUCKETS
    charts = []
    if to_dates:
        charts.append(
            {
                "type": "line",
                "labels": [_short(d) for d in to_dates],
                "datasets": [
                    _dataset(
                        _bucket_label(b),
                        [getattr(by_key.get((d, b)), "rate", None) for d in to_dates],
                        series=i,
                    )
                    for i, b in enumerate(rolling)
                ],
                "y": {"title": _("Rolled forward"), "format": "percent"},
                "palette": "buckets",
            }
        )
    return Chart(
        slug="roll_rates",
        title=_("Roll rates month over month"),
        help=_(
            "Of the loans in a bucket at one month-end snapshot, where they are at the next: in a "
            "bucket, current (active and no longer past due), paid off or written off. The matrix is the "
            "latest pair of snapshots; the chart is the share that rolled forward (to a worse bucket or "
            "written off) at each month end."
        ),
        table="debt_collections/dashboards/table_roll_rates.html",
        charts=charts,
        wide=True,
        context={
            "matrix": matrix,
            "states": [(s, _state_label(s)) for s in data.ROLL_STATES],
            "matrix_rows": [
                (_bucket_label(b), total, [cells[s] for s in data.ROLL_STATES])
                for b, (total, cells) in (matrix.rows.items() if matrix else [])
            ],
            "forward": [(d, [by_key.get((d, b)) for b in rolling]) for d in to_dates],
            "buckets": [_bucket_label(b) for b in rolling],
        },
    )


def cure_chart(f: data.DashboardFilter, scope: Scope) -> Chart:
    rows = data.cure_rates(f, team_stages=scope.stages(f.team_ids))
    labels = [str(StageChoices(row.stage).label) for row in rows]
    return Chart(
        slug="cure_rates",
        title=_("Cure rate by stage"),
        help=_(
            "Of the cases that were in a stage at some time in the period, the share that closed as cured "
            "straight from that stage within the period. Cured means closed because the borrower caught "
            "up (cured), paid the loan off, or performs on a restructured schedule; settled, written-off "
            "and legally concluded cases are not cured. A team's figures cover the stages it works and "
            "the cases it holds now."
        ),
        table="debt_collections/dashboards/table_cure_rates.html",
        charts=[
            {
                "type": "bar",
                "labels": labels,
                "datasets": [
                    _dataset(_("Cases in the stage"), [row.cases for row in rows], axis="y"),
                    _dataset(_("Cure rate"), [row.rate for row in rows], axis="y2", type="line"),
                ],
                "y": {"title": _("Cases"), "format": "count"},
                "y2": {"title": _("Cure rate"), "format": "percent"},
            }
        ],
        context={"rows": list(zip(labels, rows, strict=True))},
    )


def promise_chart(f: data.DashboardFilter) -> Chart:
    weeks = data.promise_outcomes(f)
    labels = {status: str(PromiseToPay.Status(status).label) for status in data.PROMISE_STATUSES}
    charts = []
    if weeks:
        charts.append(
            {
                "type": "bar",
                "stacked": True,
                "labels": [_short(w.week) for w in weeks],
                "datasets": [
                    *[
                        _dataset(labels[status], [w.counts[status] for w in weeks], axis="y", series=i)
                        for i, status in enumerate(data.PROMISE_STATUSES)
                    ],
                    _dataset(_("Kept rate"), [w.kept_rate for w in weeks], axis="y2", type="line", series=7),
                ],
                "y": {"title": _("Promises due"), "format": "count"},
                "y2": {"title": _("Kept rate"), "format": "percent"},
                "palette": "promises",
            }
        )
    return Chart(
        slug="promises",
        title=_("Promise kept rate"),
        help=_(
            "Promises to pay falling due in the period, by the week of their pay-by date: kept, partly "
            "kept, broken, still open or cancelled with their case. The kept rate is kept promises out "
            "of those decided (kept, partly kept or broken)."
        ),
        table="debt_collections/dashboards/table_promises.html",
        charts=charts,
        context={
            "weeks": [(w, [w.counts[s] for s in data.PROMISE_STATUSES]) for w in weeks],
            "statuses": [(s, labels[s]) for s in data.PROMISE_STATUSES],
        },
    )


def collected_chart(f: data.DashboardFilter) -> Chart:
    days = data.collected_by_day(f)
    return Chart(
        slug="collected",
        title=_("Amount collected by day"),
        help=_(
            "Posted payments (reversed ones left out) by value date, on loans that had a case open on "
            "that day, in %(currency)s."
        )
        % {"currency": f.currency},
        table="debt_collections/dashboards/table_collected.html",
        charts=[
            {
                "type": "bar",
                "labels": [_short(d.day) for d in days],
                "datasets": [_dataset(_("Collected"), [d.amount for d in days], axis="y")],
                "y": {"title": _("Collected (%(currency)s)") % {"currency": f.currency}, "format": "money"},
            }
        ],
        context={"days": days, "total": sum((d.amount for d in days), data.ZERO)},
    )


def productivity_chart(f: data.DashboardFilter) -> Chart:
    rows = data.collector_productivity(f)
    top = rows[:TOP_COLLECTORS_CHARTED]
    charts = []
    if top:
        charts.append(
            {
                "type": "bar",
                "labels": [row.name for row in top],
                "datasets": [
                    _dataset(_("Attempts"), [row.attempts for row in top], axis="y"),
                    _dataset(_("Right-party contacts"), [row.right_party for row in top], axis="y"),
                    _dataset(_("Promises"), [row.promises for row in top], axis="y"),
                    _dataset(_("Collected"), [row.collected for row in top], axis="y2"),
                ],
                "y": {"title": _("Count"), "format": "count"},
                "y2": {"title": _("Collected (%(currency)s)") % {"currency": f.currency}, "format": "money"},
            }
        )
    return Chart(
        slug="productivity",
        title=_("Collector productivity"),
        help=_(
            "Per collector, on the cases in scope in the period: attempts are the contacts they logged; "
            "right-party contacts those where they spoke to the borrower; promises the promises to pay "
            "they recorded. Collected: posted payments valued in the period on the cases assigned to "
            "them now (a payment counts for the assignee of the case open on the loan on its value date; "
            "after a reassignment, the new assignee). The chart shows the %(n)d who collected most."
        )
        % {"n": TOP_COLLECTORS_CHARTED},
        table="debt_collections/dashboards/table_productivity.html",
        charts=charts,
        wide=True,
        context={"rows": rows},
    )


def build_charts(f: data.DashboardFilter, scope: Scope) -> list[Chart]:
    dates = data.snapshot_dates(f)
    return [
        ageing_chart(f, today(), dates),
        cure_chart(f, scope),
        roll_chart(f, dates),
        promise_chart(f),
        collected_chart(f),
        productivity_chart(f),
    ]


# --- CSV ------------------------------------------------------------------------------------------


def _csv_ageing(f: data.DashboardFilter, scope: Scope):
    yield [_("Date"), _("Source"), _("Bucket"), _("Loans"), _("Amount overdue"), _("Currency")]
    for row in data.arrears_ageing(f, today=today()):
        yield [
            row.as_of.isoformat(),
            _("today"),
            _bucket_label(row.bucket),
            row.loans,
            _cents(row.overdue),
            f.currency,
        ]
    for row in data.arrears_trend(f):
        yield [
            row.as_of.isoformat(),
            _("snapshot"),
            _bucket_label(row.bucket),
            row.loans,
            _cents(row.overdue),
            f.currency,
        ]


def _csv_roll_rates(f: data.DashboardFilter, scope: Scope):
    yield [
        _("From snapshot"),
        _("To snapshot"),
        _("Bucket then"),
        _("State at the next snapshot"),
        _("Loans"),
        _("Share (%)"),
    ]
    for row in data.roll_rates(f):
        yield [
            row.from_date.isoformat(),
            row.to_date.isoformat(),
            _bucket_label(row.from_bucket),
            _state_label(row.to_state),
            row.loans,
            _percent(row.share),
        ]


def _csv_cure_rates(f: data.DashboardFilter, scope: Scope):
    yield [_("Stage"), _("Cases in the stage"), _("Cured from the stage"), _("Cure rate (%)")]
    for row in data.cure_rates(f, team_stages=scope.stages(f.team_ids)):
        yield [str(StageChoices(row.stage).label), row.cases, row.cured, _percent(row.rate)]


def _csv_promises(f: data.DashboardFilter, scope: Scope):
    statuses = data.PROMISE_STATUSES
    yield [
        _("Week from"),
        *[str(PromiseToPay.Status(s).label) for s in statuses],
        _("Amount promised"),
        _("Currency"),
        _("Kept rate (%)"),
    ]
    for week in data.promise_outcomes(f):
        yield [
            week.week.isoformat(),
            *[week.counts[s] for s in statuses],
            _cents(week.promised),
            f.currency,
            _percent(week.kept_rate),
        ]


def _csv_collected(f: data.DashboardFilter, scope: Scope):
    yield [_("Value date"), _("Payments"), _("Amount collected"), _("Currency")]
    for day in data.collected_by_day(f):
        yield [day.day.isoformat(), day.payments, _cents(day.amount), f.currency]


def _csv_productivity(f: data.DashboardFilter, scope: Scope):
    yield [
        _("Collector"),
        _("Attempts"),
        _("Right-party contacts"),
        _("Right-party rate (%)"),
        _("Promises"),
        _("Amount promised"),
        _("Collected"),
        _("Currency"),
    ]
    for row in data.collector_productivity(f):
        yield [
            row.name,
            row.attempts,
            row.right_party,
            _percent(row.right_party_rate),
            row.promises,
            _cents(row.promised),
            _cents(row.collected),
            f.currency,
        ]


# A spreadsheet runs a cell that starts with one of these as a formula: text (a collector's name) that
# does gets a leading apostrophe (OWASP "CSV injection"); numbers are written by us and never do.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _cell(value):
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


CSV_ROWS = {
    "ageing": _csv_ageing,
    "roll_rates": _csv_roll_rates,
    "cure_rates": _csv_cure_rates,
    "promises": _csv_promises,
    "collected": _csv_collected,
    "productivity": _csv_productivity,
}


# --- views ----------------------------------------------------------------------------------------


def _render(request, form, scope: Scope, charts: list[Chart] | None, status: int = 200):
    context = {
        "form": form,
        "scope": scope,
        "charts": charts,
        "charts_id": CHARTS_ID,
        "query": _query(form) if charts is not None else "",
        "currency": form.cleaned_data.get("currency") if charts is not None else "",
        "today": today(),
    }
    if request.htmx:
        return render(request, "debt_collections/dashboards/charts.html", context, status=status)
    return render(request, "debt_collections/dashboards/page.html", context, status=status)


@login_required
@require_GET
@vary_on_headers("HX-Request")
def dashboards(request):
    scope = _access(request)
    form, currencies = _filter_form(request, scope)
    if not form.is_valid():
        return _render(request, form, scope, None, status=422 if request.htmx else 200)
    f = _dashboard_filter(form, scope, currencies)
    with data.reporting_session():
        charts = build_charts(f, scope)
    return _render(request, form, scope, charts)


@login_required
@require_GET
def dashboard_csv(request, chart: str):
    """One chart's rows as CSV (UTF-8 with a byte-order mark, so that Excel reads Chinese)."""
    scope = _access(request)
    if chart not in CSV_ROWS:
        raise Http404(_("No such chart."))
    form, currencies = _filter_form(request, scope)
    if not form.is_valid():
        return _render(request, form, scope, None)
    f = _dashboard_filter(form, scope, currencies)
    buffer = StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    with data.reporting_session():
        writer.writerows([_cell(value) for value in row] for row in CSV_ROWS[chart](f, scope))
        audit_record(
            event_type=AuditEventType.EXPORT,
            actor=request.user,
            subject=("dashboard", chart),
            details={"format": "csv", "filters": dict(form.cleaned_data) | {"team_ids": f.team_ids}},
        )
    response = HttpResponse(buffer.getvalue().encode("utf-8"), content_type="text/csv; charset=utf-8")
    filename = f"{chart}_{f.start.isoformat()}_{f.end.isoformat()}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


urlpatterns = [
    path("dashboards/", dashboards, name="dashboards"),
    path("dashboards/<slug:chart>.csv", dashboard_csv, name="dashboard_csv"),
]

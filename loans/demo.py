"""A realistic demo loan book, generated in bulk: the logic behind ``manage.py seed_demo``.

Two partners, a handful of products, borrowers with contact points, loans with their schedules,
payments and allocations, spread over the ~18 months before the business date ``as_of`` so the
book has paid-off loans, current ones and arrears in every bucket.

Speed (a million loans in minutes) decides the shape of the code:

* Names, e-mail user names and area codes come from small Faker pools drawn once; everything
  else is ``random.Random(seed)``, so the same seed gives the same book.
* Schedule amounts are cached by (principal, rate, term, method, frequency, fee) and due dates by
  (first due date, frequency, term); principals are round amounts and rates come from a short
  list per product, so the caches stay small. Both come from ``loans.schedules``.
* Payments are decided per installment (what was paid, when), oldest installment first, one
  payment per paid piece of an installment; each payment therefore has exactly one allocation
  line, and that is what ``loans.allocation.allocate`` gives for the same payments (the tests
  replay a sample). Penalty is left at zero here; ``services.delinquency_refresh`` computes it.
* Rows are written in batches of loans, with ids assigned here (the sequences are moved past them
  at the end): PostgreSQL gets ``COPY ... FROM STDIN`` per table and batch from a second thread
  while the next batch is generated, and a large load runs with the secondary indexes and
  constraints off, rebuilt once at the end (``_BulkLoad``); other databases get ``executemany``.
  Memory stays flat (about 230 MB for a million loans).
* Raw inserts skip Django's defaults and ``auto_now`` fields, so every column is set explicitly
  (``_check_columns`` fails loudly if a model grows one this module does not know), and they skip
  django-simple-history too: demo rows have no history, on purpose. They skip the model fields'
  conversions as well, so the national ID goes in as the field stores it: a Fernet token and its
  lookup hash (``loans.crypto``, about 10 us a borrower).

The same seed gives the same book, down to every national ID; only the stored tokens differ from run
to run (a Fernet token holds its creation time and a random IV).

Everything runs in one transaction: a failure leaves the database as it was.
"""

from __future__ import annotations

import csv
import functools
import io
import itertools
import random
import re
import secrets
import time
from bisect import bisect_left
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from dateutil.relativedelta import relativedelta
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import DatabaseError, IntegrityError, connection, models, transaction
from django.utils import timezone
from faker import Faker
from faker.providers.ssn.zh_CN import Provider as ZhSsnProvider
from tqdm import tqdm

from loans import crypto, schedules, services
from loans.delinquency import BUCKET_FLOORS, bucket_for
from loans.models import (
    Allocation,
    AllocationOrder,
    Borrower,
    ContactPoint,
    Installment,
    Loan,
    LoanProduct,
    Partner,
    Payment,
)

BUCKETS = tuple(name for _floor, name in BUCKET_FLOORS)
DEFAULT_BATCH_SIZE = 5_000
CURRENCY = "CNY"
HISTORY_DAYS = 548  # loans start within the ~18 months before as_of


class DemoError(Exception):
    """Input or database state that stops the demo seed; the message is one readable line."""


# --- the catalogue ------------------------------------------------------------------------------

DEMO_PARTNERS: tuple[tuple[str, str], ...] = (
    ("huiyi-lending", "汇易金融"),
    ("northbridge-credit", "Northbridge Credit"),
)
# What every collection notice prints about the creditor: how to reach them and how to pay. Fictional
# (RFC 2606 e-mail domains, Ofcom's drama telephone range, a made-up bank account).
DEMO_PARTNER_DETAILS: dict[str, dict[str, str]] = {
    "huiyi-lending": {
        "collections_phone": "400-820-1234",
        "collections_email": "collections@huiyi.example.com",
        "postal_address": "上海市浦东新区世纪大道100号 汇易金融 贷后服务部（邮编200120）",
        "payment_instructions": (
            "在汇易金融App“我的借款-立即还款”中还款；或转账至 户名：汇易金融有限公司，"
            "开户行：招商银行上海分行，账号：6214 8300 0000 0000，附言请注明借款编号。"
        ),
    },
    "northbridge-credit": {
        "collections_phone": "020 7946 0123",
        "collections_email": "collections@northbridge.example.co.uk",
        "postal_address": "Northbridge Credit, Customer Support, 1 Example Street, London EC1A 1AA",
        "payment_instructions": (
            "Pay in the Northbridge app, or by bank transfer to Northbridge Credit Ltd, sort code 00-00-00, "
            "account 00000000, quoting your loan reference."
        ),
    },
}


@dataclass(frozen=True)
class ProductSpec:
    code: str
    name: str
    method: schedules.RepaymentMethod
    frequency: schedules.Frequency
    terms: tuple[int, ...]
    rates: tuple[str, ...]  # yearly, as fractions
    principals: tuple[int, int]  # whole yuan, multiples of 500
    grace_days: int
    penalty_rate: str
    fee: str = "0.00"
    allocation_order: str = AllocationOrder.PENALTY_FEE_INTEREST_PRINCIPAL


M, BW, W = schedules.Frequency.MONTHLY, schedules.Frequency.BIWEEKLY, schedules.Frequency.WEEKLY
RM = schedules.RepaymentMethod

# Penalty rates are capped at run time by PENALTY_ANNUAL_COST_CAP (contract rate + penalty <= cap),
# so a 24% loan accrues no penalty at all with the default 0.24 cap.
DEMO_PRODUCTS: tuple[ProductSpec, ...] = (
    ProductSpec(
        "demo-annuity-monthly",
        "汇易月供贷 (等额本息)",
        RM.ANNUITY,
        M,
        (12, 24),
        ("0.088800", "0.120000", "0.150000", "0.180000", "0.216000", "0.240000"),
        (3_000, 50_000),
        grace_days=3,
        penalty_rate="0.120000",
    ),
    ProductSpec(
        "demo-equal-principal",
        "经营周转贷 (等额本金)",
        RM.EQUAL_PRINCIPAL,
        M,
        (12, 18, 24),
        ("0.072000", "0.096000", "0.120000"),
        (10_000, 50_000),
        grace_days=1,
        penalty_rate="0.060000",
        allocation_order=AllocationOrder.INTEREST_PRINCIPAL_PENALTY_FEE,
    ),
    ProductSpec(
        "demo-interest-only",
        "先息后本 (按月付息, 到期还本)",
        RM.INTEREST_ONLY,
        M,
        (6, 12),
        ("0.100000", "0.140000", "0.180000"),
        (5_000, 50_000),
        grace_days=0,
        penalty_rate="0.050000",
    ),
    ProductSpec(
        "demo-flex-biweekly",
        "Northbridge Flex (biweekly instalments)",
        RM.ANNUITY,
        BW,
        (13, 26),
        ("0.180000", "0.200000", "0.230000"),
        (1_000, 20_000),
        grace_days=2,
        penalty_rate="0.060000",
        fee="5.00",
        allocation_order=AllocationOrder.FEE_PENALTY_INTEREST_PRINCIPAL,
    ),
    ProductSpec(
        "demo-cash-advance-weekly",
        "Northbridge Cash Advance (bullet, weekly terms)",
        RM.BULLET,
        W,
        (4, 8),
        ("0.120000", "0.180000", "0.240000"),
        (1_000, 5_000),
        grace_days=0,
        penalty_rate="0.050000",
    ),
)

# (product index, weight) per partner.
PRODUCT_MIX = {
    "huiyi-lending": ((0, 60), (1, 22), (2, 18)),
    "northbridge-credit": ((0, 25), (3, 50), (4, 25)),
}

# --- borrower reference data ---------------------------------------------------------------------

ZH, US, GB = "zh_CN", "en_US", "en_GB"

_CN_CITIES = (
    "上海市浦东新区",
    "北京市朝阳区",
    "广州市天河区",
    "深圳市南山区",
    "杭州市西湖区",
    "成都市武侯区",
)
_CN_ROADS = ("世纪大道", "建国路", "天河路", "科技园路", "文三路", "人民南路", "中山路")
_US_PLACES = ("Springfield, IL 62701", "Albany, NY 12207", "Austin, TX 78701", "Sacramento, CA 95814")
_US_STREETS = ("Main St", "Oak Ave", "Maple Dr", "Elm St", "Washington Blvd")
_GB_PLACES = ("London SW1A 1AA", "Manchester M1 1AE", "Leeds LS1 1UR", "Bristol BS1 4DJ")
_GB_STREETS = ("High Street", "Station Road", "Church Lane", "Victoria Road")


def _address(locale: str, n: int) -> str:
    """A made-up postal address, the same for the same borrower id."""
    if locale == ZH:
        return f"{_CN_CITIES[n % 6]}{_CN_ROADS[n // 6 % 7]}{n % 997 + 1}号{n % 29 + 1}楼{n % 31 + 1}室"
    if locale == US:
        return f"{n % 9899 + 100} {_US_STREETS[n // 4 % 5]}, {_US_PLACES[n % 4]}"
    return f"{n % 199 + 1} {_GB_STREETS[n // 4 % 4]}, {_GB_PLACES[n % 4]}"


# (region, time zone, US area codes) for English-speaking borrowers.
US_REGIONS = (
    ("US-NY", "America/New_York", ("212", "646", "718", "917")),
    ("US-NJ", "America/New_York", ("201", "973")),
    ("US-MA", "America/New_York", ("617", "857")),
    ("US-CA", "America/Los_Angeles", ("213", "310", "415", "650")),
    ("US-WA", "America/Los_Angeles", ("206", "425")),
)
# fmt: off
CN_MOBILE_PREFIXES = (
    "130", "131", "132", "133", "135", "136", "137", "138", "139", "150", "151", "152", "155", "156", "157",
    "158", "159", "166", "177", "180", "181", "182", "183", "185", "186", "187", "188", "189", "199",
)
# fmt: on
RELATIONSHIPS = {
    ZH: ("配偶", "父母", "同事", "朋友", "兄弟姐妹"),
    US: ("spouse", "parent", "colleague", "sibling"),
    GB: ("spouse", "parent", "colleague", "sibling"),
}
RELATIONSHIPS_WEIGHTS = (40, 30, 15, 10, 5)
# RFC 2606 domains and the fictional telephone ranges (US 555-0100..0199, Ofcom 07700 900xxx):
# demo contact points can never reach a real person. Mainland China has no such range.
EMAIL_DOMAINS = ("example.com", "example.net", "example.org")
CN_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
CN_ID_CHECK = "10X98765432"
NINO_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
NINO_SECOND = "ABCEGHJKLMNPRSTWXYZ"
CHANNELS = ("wallet", "bank_transfer", "card", "cash")  # Payment.Channel values
CHANNEL_CUM = (0.40, 0.85, 0.97, 1.0)

# --- payment behaviour -----------------------------------------------------------------------------

ON_TIME, LATE, PARTIAL, DEFAULTER = range(4)
BEHAVIOUR_CUM = (0.71, 0.83, 0.92)  # cumulative shares of ON_TIME, LATE, PARTIAL; DEFAULTER the rest
# Days past due a defaulter stopped paying at, per bucket: (cumulative weight, low, high).
DEFAULT_DPD = ((0.20, 1, 30), (0.36, 31, 60), (0.50, 61, 90), (0.76, 91, 180), (1.0, 181, 420))
REPEAT_BORROWER_SHARE = 0.07

# --- the tables ------------------------------------------------------------------------------------

# fmt: off
COLUMNS: dict[type[models.Model], tuple[str, ...]] = {
    Borrower: (
        "id", "partner_id", "external_ref", "full_name", "national_id", "national_id_hash", "date_of_birth",
        "time_zone", "preferred_language", "region", "created_at", "updated_at",
    ),
    ContactPoint: (
        "id", "borrower_id", "kind", "label", "value", "is_primary", "consent_given", "opted_out",
        "opted_out_at", "is_third_party", "third_party_name", "relationship", "is_valid", "value_hash",
    ),
    Loan: (
        "id", "partner_id", "borrower_id", "product_id", "external_ref", "currency", "principal",
        "annual_rate", "term", "start_date", "first_due_date", "status", "closed_on", "schedule_version",
        "at_risk", "created_at", "oldest_unpaid_due_date", "overdue_principal", "overdue_interest",
        "overdue_fee", "overdue_penalty", "outstanding_principal", "bucket", "limitation_date",
    ),
    Installment: (
        "id", "loan_id", "schedule_version", "number", "due_date", "principal_due", "interest_due",
        "fee_due", "penalty_due", "principal_paid", "interest_paid", "fee_paid", "penalty_paid",
        "superseded", "penalty_carried", "penalty_waived",
    ),
    Payment: (
        "id", "partner_id", "loan_id", "external_ref", "amount", "currency", "value_date", "received_at",
        "channel", "status", "reversed_at", "reversal_reason", "unapplied_amount", "created_at",
    ),
    Allocation: ("id", "payment_id", "installment_id", "principal", "interest", "fee", "penalty"),
}
# fmt: on
WRITE_ORDER = (Borrower, ContactPoint, Loan, Installment, Payment, Allocation)


def _check_columns() -> None:
    """Raw inserts set every column; refuse to run if a model has columns this module does not fill."""
    for model, columns in COLUMNS.items():
        actual = {f.column for f in model._meta.concrete_fields}
        if actual != set(columns):
            missing, extra = sorted(actual - set(columns)), sorted(set(columns) - actual)
            raise DemoError(
                f"loans.demo is out of date for {model._meta.db_table}: columns not filled {missing}, "
                f"unknown {extra}; update COLUMNS in loans/demo.py."
            )


def _cents(amount: Decimal) -> int:
    return int(amount * 100)


def _fmt(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}"


# --- results ---------------------------------------------------------------------------------------


@dataclass
class SeedResult:
    as_of: date
    loans: int = 0
    borrowers: int = 0
    contact_points: int = 0
    installments: int = 0
    payments: int = 0
    seconds: float = 0.0
    buckets: dict[str, int] = field(default_factory=dict)
    paid_off: int = 0
    users: list[tuple[str, str, str]] = field(default_factory=list)

    def summary(self) -> str:
        delinquent = sum(n for b, n in self.buckets.items() if b != "current")
        share = 100 * delinquent / self.loans if self.loans else 0
        buckets = ", ".join(f"{b} {self.buckets.get(b, 0):,}" for b in BUCKETS)
        return (
            f"Seeded {self.loans:,} loans, {self.borrowers:,} borrowers, {self.payments:,} payments, "
            f"{self.installments:,} installments in {self.seconds:.1f} s as of {self.as_of.isoformat()} "
            f"({self.paid_off:,} paid off, {share:.1f}% delinquent); buckets: {buckets}."
        )


# --- the generator ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=4)
def _faker_pools(seed: int) -> tuple[dict[str, list[str]], dict[str, list[str]], dict[str, list[str]]]:
    """First names, last names and e-mail user names per locale, drawn once per seed (Faker is slow)."""
    first_names, last_names, user_names = {}, {}, {}
    for locale, size in ((ZH, 5000), (US, 3000), (GB, 3000)):
        fake = Faker(locale)
        fake.seed_instance(seed)
        last_names[locale] = [fake.last_name() for _ in range(size)]
        first_names[locale] = [fake.first_name() for _ in range(size)]
        user_names[locale] = [fake.user_name() for _ in range(size // 2)]
    return first_names, last_names, user_names


class _IsoDates(dict):
    """date ordinal -> 'YYYY-MM-DD', computed on first use."""

    def __missing__(self, ordinal: int) -> str:
        value = self[ordinal] = date.fromordinal(ordinal).isoformat()
        return value


STAMP_SLOTS = 288  # five-minute slots in a day


class _Stamps(dict):
    """ordinal * 288 + five-minute slot of the local day (settings.TIME_ZONE) -> the UTC timestamp text.

    PostgreSQL gets an explicit +00 offset; SQLite stores naive UTC, as Django does with USE_TZ.
    """

    def __init__(self, vendor: str) -> None:
        super().__init__()
        self.zone = ZoneInfo(settings.TIME_ZONE)
        self.suffix = "+00" if vendor == "postgresql" else ""

    def __missing__(self, key: int) -> str:
        ordinal, slot = divmod(key, STAMP_SLOTS)
        day = date.fromordinal(ordinal)
        local = datetime(day.year, day.month, day.day, tzinfo=self.zone) + timedelta(minutes=5 * slot)
        utc = local.astimezone(UTC)
        value = self[key] = f"{utc:%Y-%m-%d %H:%M:%S}{self.suffix}"
        return value


@dataclass(frozen=True)
class _Product:
    spec: ProductSpec
    id_txt: str
    grace: int
    fee: Decimal
    order: tuple[int, ...]  # indexes into (principal, interest, fee) in the product's waterfall order
    principals: tuple[int, ...]
    bullet: bool


NUMBERS = tuple(str(n) for n in range(1, schedules.MAX_TERM + 1))  # installment numbers and terms as text


class _Tables:
    """Rows of one batch, per model, as tuples in ``COLUMNS`` order.

    Loans, installments, payments and allocations (the bulk of the rows) are all text, "" standing
    for NULL in nullable columns: PostgreSQL gets them joined with commas (none holds a comma, a
    quote or a line break), which is much faster than the csv module. Borrowers and contact points
    hold names: typed values, written through ``csv``.
    """

    def __init__(self) -> None:
        self.rows: dict[type[models.Model], list[tuple]] = {model: [] for model in WRITE_ORDER}


# Schedule row layout (cached per schedule): amounts in cents, then as text, then the installment
# row's columns from principal_due on, for the installment unpaid and paid in full.
PRINCIPAL, INTEREST, FEE, TOTAL, P_TXT, I_TXT, F_TXT, PARTS, TOTAL_TXT, UNPAID_TAIL, PAID_TAIL = range(11)
ZERO_TXT = "0.00"
FALSE, TRUE = "0", "1"  # booleans in the all-text rows: PostgreSQL and SQLite both read these
PARTNER_PREFIX = {"huiyi-lending": "HY", "northbridge-credit": "NB"}


class _Generator:
    """Draws the book loan by loan; all randomness comes from one ``random.Random(seed)``.

    Hot path: a million loans make some 35 million rows, so the per-row work is dictionary look-ups
    of cached text (dates, timestamps, schedule amounts) and ``random()`` rather than ``randint``.
    """

    def __init__(
        self,
        *,
        seed: int,
        as_of: date,
        vendor: str,
        partners: dict[str, int],
        products: list[tuple[ProductSpec, LoanProduct]],
        first_ids: dict[type[models.Model], int],
    ) -> None:
        self.rng = random.Random(seed)
        self.random = self.rng.random
        self.as_of = as_of.toordinal()
        self.partners = partners
        self.partner_text = {code: str(pk) for code, pk in partners.items()}
        self.iso = _IsoDates()
        self.stamps = _Stamps(vendor)
        by_code = {}
        for spec, product in products:
            by_code[spec.code] = _Product(
                spec=spec,
                id_txt=str(product.id),
                grace=product.grace_days,
                fee=Decimal(spec.fee),
                order=tuple(
                    ("principal", "interest", "fee").index(c) for c in product.waterfall if c != "penalty"
                ),
                principals=tuple(range(spec.principals[0], spec.principals[1] + 1, 500)),
                bullet=spec.method is RM.BULLET,
            )
        self.mix: dict[str, tuple[tuple[float, ...], tuple[_Product, ...]]] = {}
        for code, mix in PRODUCT_MIX.items():
            total = sum(weight for _i, weight in mix)
            cumulative = tuple(itertools.accumulate(weight / total for _i, weight in mix))
            self.mix[code] = (cumulative, tuple(by_code[DEMO_PRODUCTS[i].code] for i, _w in mix))
        self.next_id = dict(first_ids)
        self.refs = {
            code: [
                f"{PARTNER_PREFIX[code]}-B{{:08d}}".format,
                f"{PARTNER_PREFIX[code]}-L{{:09d}}".format,
                f"{PARTNER_PREFIX[code]}-P{{:010d}}".format,
            ]
            for code in partners
        }
        self.ref_counts = {code: [0, 0, 0] for code in partners}
        self.schedule_cache: dict[tuple, tuple] = {}
        self.dates_cache: dict[tuple, tuple[int, ...]] = {}
        self.first_due_cache: dict[tuple[int, str], int] = {}
        self.first_names, self.last_names, self.user_names = _faker_pools(seed)
        # County-level codes only (the province and prefecture rows end in 00).
        self.cn_areas = [code for code in ZhSsnProvider.area_codes if not code.endswith("00")]
        self.count = {"borrowers": 0, "contact_points": 0, "installments": 0, "payments": 0, "paid_off": 0}

    def _pick(self, items):
        return items[int(self.random() * len(items))]

    def _ref(self, partner: str, kind: int) -> str:
        counts = self.ref_counts[partner]
        counts[kind] += 1
        return self.refs[partner][kind](counts[kind])

    # -- schedules ---------------------------------------------------------------------------------

    def _schedule(self, product: _Product, principal: int, rate: str, term: int) -> tuple:
        """The installments' amounts, laid out as PRINCIPAL ... PAID_TAIL (see above)."""
        spec = product.spec
        key = (principal, rate, term, spec.method, spec.frequency, spec.fee)
        rows = self.schedule_cache.get(key)
        if rows is None:
            generated = schedules.generate_schedule(
                principal=Decimal(principal),
                annual_rate=Decimal(rate),
                term=term,
                method=spec.method,
                frequency=spec.frequency,
                first_due_date=date(2000, 1, 31),  # the amounts do not depend on the dates
                currency=CURRENCY,
                fee_per_installment=product.fee,
            )
            rows = []
            for r in generated:
                p, i, f = _cents(r.principal), _cents(r.interest), _cents(r.fee)
                due = (_fmt(p), _fmt(i), _fmt(f), ZERO_TXT)
                unpaid, paid = (*due, ZERO_TXT, ZERO_TXT, ZERO_TXT, ZERO_TXT, FALSE), (*due, *due, FALSE)
                rows.append((p, i, f, p + i + f, *due[:3], (p, i, f), _fmt(p + i + f), unpaid, paid))
            rows = self.schedule_cache[key] = tuple(rows)
        return rows

    def _first_due(self, start: int, frequency: str) -> int:
        key = (start, frequency)
        first = self.first_due_cache.get(key)
        if first is None:
            if frequency == M:
                first = (date.fromordinal(start) + relativedelta(months=1)).toordinal()
            else:
                first = start + (14 if frequency == BW else 7)
            self.first_due_cache[key] = first
        return first

    def _due_dates(self, first_due: int, frequency: str, term: int, bullet: bool) -> tuple[int, ...]:
        key = (first_due, frequency, term)
        dues = self.dates_cache.get(key)
        if dues is None:
            dates = schedules.due_dates(
                first_due_date=date.fromordinal(first_due), frequency=frequency, count=term
            )
            dues = self.dates_cache[key] = tuple(d.toordinal() for d in dates)
        return dues[-1:] if bullet else dues  # a bullet loan has one installment, at the end of the term

    # -- borrowers ---------------------------------------------------------------------------------

    def _phone(self, locale: str, area_codes: tuple[str, ...]) -> str:
        random = self.random
        if locale == ZH:
            return f"+86{self._pick(CN_MOBILE_PREFIXES)}{int(random() * 10**8):08d}"
        if locale == US:
            return f"+1{self._pick(area_codes)}55501{int(random() * 100):02d}"
        return f"+447700900{int(random() * 1000):03d}"

    def _name(self, locale: str) -> str:
        if locale == ZH:
            return self._pick(self.last_names[ZH]) + self._pick(self.first_names[ZH])
        return f"{self._pick(self.first_names[locale])} {self._pick(self.last_names[locale])}"

    def _national_id(self, locale: str, born: int) -> str:
        random = self.random
        if locale == ZH:  # resident identity number: area, birth date, sequence, ISO 7064 check character
            body = f"{self._pick(self.cn_areas)}{self.iso[born].replace('-', '')}{int(random() * 1000):03d}"
            return body + CN_ID_CHECK[sum(int(c) * w for c, w in zip(body, CN_ID_WEIGHTS, strict=True)) % 11]
        if locale == US:  # SSN format: never area 000 or 666, group 00 or serial 0000
            area = 1 + int(random() * 899)
            group, serial = 1 + int(random() * 99), 1 + int(random() * 9999)
            return f"{667 if area == 666 else area:03d}-{group:02d}-{serial:04d}"
        letters = self._pick(NINO_FIRST) + self._pick(NINO_SECOND)  # National Insurance number format
        return f"{letters}{int(random() * 10**6):06d}{self._pick('ABCD')}"

    def _borrower(self, out: _Tables, partner: str, locale: str, start: int) -> int:
        random = self.random
        borrower_id = self.next_id[Borrower]
        self.next_id[Borrower] += 1
        self.count["borrowers"] += 1
        born = self.as_of - 21 * 365 - int(random() * 41 * 365)
        area_codes: tuple[str, ...] = ()
        if locale == ZH:
            region, zone, language = "CN", "Asia/Shanghai", "zh-hans"
        elif locale == US:
            region, zone, area_codes = self._pick(US_REGIONS)
            language = "en"
        else:
            region, zone, language = "GB-ENG", "Europe/London", "en"
        created = self.stamps[(start - 1 - int(random() * 29)) * STAMP_SLOTS + 96 + int(random() * 168)]
        name, national_id = self._name(locale), self._national_id(locale, born)
        out.rows[Borrower].append(
            (borrower_id, self.partners[partner], self._ref(partner, 0), name, crypto.encrypt(national_id),
             crypto.lookup_hash(national_id), self.iso[born], zone, language, region, created, created)
        )  # fmt: skip

        mobile = self._phone(locale, area_codes)
        # kind, label, value, primary, consent, opted out, opted out at, third party, their name,
        # relationship, valid
        points = [("phone", "mobile", mobile, True, True, False, None, False, "", "", True)]
        if random() < (0.35 if locale == ZH else 0.8):
            email = f"{self._pick(self.user_names[locale])}{int(random() * 100)}@{self._pick(EMAIL_DOMAINS)}"
            opted_out = random() < 0.03
            points.append(
                (
                    "email",
                    "home",
                    email,
                    True,
                    True,
                    opted_out,
                    created if opted_out else None,
                    False,
                    "",
                    "",
                    True,
                )
            )
        # A postal address for every borrower (letters), derived from its number in this run (not the
        # id, which a reset does not restart) and not drawn, so the random stream, and with it every
        # other figure of a seeded demo, stays as it was.
        address = _address(locale, self.count["borrowers"])
        points.append(("address", "home", address, True, True, False, None, False, "", "", True))
        if random() < 0.3:
            other = mobile
            while other == mobile:
                other = self._phone(locale, area_codes)
            relationships = RELATIONSHIPS[locale]
            relationship = self.rng.choices(relationships, RELATIONSHIPS_WEIGHTS[: len(relationships)])[0]
            consent = random() < 0.9
            points.append(
                (
                    "phone",
                    "other",
                    other,
                    False,
                    consent,
                    False,
                    None,
                    True,
                    self._name(locale),
                    relationship,
                    True,
                )
            )
        first = self.next_id[ContactPoint]
        self.next_id[ContactPoint] += len(points)
        out.rows[ContactPoint].extend(
            (first + i, borrower_id, *point, crypto.contact_lookup_hash(point[0], point[2]))
            for i, point in enumerate(points)
        )
        self.count["contact_points"] += len(points)
        return borrower_id

    # -- loans -------------------------------------------------------------------------------------

    def batch(self, count: int) -> _Tables:
        out = _Tables()
        recent: dict[str, list[int]] = {code: [] for code in self.partners}
        for _ in range(count):
            self._loan(out, recent)
        return out

    def _plan(self, behaviour: int, sched: tuple, dues: tuple[int, ...], grace: int) -> list:
        """What the borrower pays when: (value date, installment index, cents or None for the rest of it)."""
        random = self.random
        n = len(sched)
        if behaviour in (ON_TIME, DEFAULTER):
            habit = random()
            # auto-debit on the due date, or a few days early, or late within the grace days
            offset = (
                0 if habit < 0.55 else -1 - int(random() * 3) if habit < 0.9 else int(random() * (grace + 1))
            )
            stop = n
            if behaviour == DEFAULTER:
                y = random()
                low, high = next((lo, hi) for cum, lo, hi in DEFAULT_DPD if y < cum)
                stop = min(bisect_left(dues, self.as_of - low - int(random() * (high - low + 1))), n - 1)
            plan = [(dues[k] + offset, k, None) for k in range(stop)]
            if behaviour == DEFAULTER and random() < 0.35:  # a last partial payment
                plan.append((dues[stop], stop, int(sched[stop][TOTAL] * (0.2 + 0.6 * random())) // 100 * 100))
            return plan
        if behaviour == LATE:
            lateness = 4 + int(random() * 22)
            return [(dues[k] + lateness + int(random() * 4), k, None) for k in range(n)]
        plan = []  # PARTIAL: some installments in two goes, the rest 3 to 20 days later
        for k in range(n):
            if random() < 0.3:
                plan.append((dues[k], k, int(sched[k][TOTAL] * (0.3 + 0.6 * random())) // 100 * 100))
                plan.append((dues[k] + 3 + int(random() * 18), k, None))
            else:
                plan.append((dues[k], k, None))
        return plan

    def _loan(self, out: _Tables, recent: dict[str, list[int]]) -> None:
        random = self.random
        as_of, iso, stamps = self.as_of, self.iso, self.stamps
        r = random()
        locale = ZH if r < 0.85 else US if r < 0.94 else GB
        if locale == ZH:
            partner = "huiyi-lending" if random() < 0.8 else "northbridge-credit"
        else:
            partner = "northbridge-credit" if random() < 0.85 else "huiyi-lending"
        cumulative, choices = self.mix[partner]
        product = choices[bisect_left(cumulative, random())]
        spec = product.spec
        term = self._pick(spec.terms)
        rate = self._pick(spec.rates)
        principal = product.principals[
            int(len(product.principals) * random() ** 1.6)
        ]  # small loans are commoner
        start = as_of - int(HISTORY_DAYS * random() ** 1.2)  # a growing book: more recent loans
        first_due = self._first_due(start, spec.frequency)
        sched = self._schedule(product, principal, rate, term)
        dues = self._due_dates(first_due, spec.frequency, term, product.bullet)
        n = len(sched)

        borrowers = recent[partner]
        if borrowers and random() < REPEAT_BORROWER_SHARE:
            borrower_id = self._pick(borrowers)
        else:
            borrower_id = self._borrower(out, partner, locale, start)
            borrowers.append(borrower_id)

        x = random()
        behaviour = (
            ON_TIME
            if x < BEHAVIOUR_CUM[0]
            else LATE
            if x < BEHAVIOUR_CUM[1]
            else (PARTIAL if x < BEHAVIOUR_CUM[2] else DEFAULTER)
        )
        plan = self._plan(behaviour, sched, dues, product.grace)

        partner_id = self.partner_text[partner]
        next_id = self.next_id
        loan_id = next_id[Loan]
        loan_txt = str(loan_id)
        first_installment = next_id[Installment]
        payment_id, allocation_id = next_id[Payment], next_id[Allocation]
        paid: list[tuple[int, int, int] | None] = [None] * n
        payments, allocations = out.rows[Payment], out.rows[Allocation]
        last = start
        for value, k, amount in plan:
            value = max(value, last)  # payments keep installment order: oldest first
            if value > as_of:
                break
            row, before = sched[k], paid[k]
            if before is None and amount is None:  # the whole installment at once: all text is cached
                parts, after = row[PARTS], row[PARTS]
                amount_txt, texts = row[TOTAL_TXT], (row[P_TXT], row[I_TXT], row[F_TXT])
            else:
                if before is None:  # part of it, in the product's waterfall order
                    split = [0, 0, 0]
                    left = amount
                    for c in product.order:
                        split[c] = min(left, row[c])
                        left -= split[c]
                    parts = after = tuple(split)
                else:  # the rest of a part-paid installment
                    parts, after = (
                        (
                            row[PRINCIPAL] - before[PRINCIPAL],
                            row[INTEREST] - before[INTEREST],
                            row[FEE] - before[FEE],
                        ),
                        row[PARTS],
                    )
                total = parts[0] + parts[1] + parts[2]
                if total <= 0:
                    continue
                amount_txt, texts = _fmt(total), (_fmt(parts[0]), _fmt(parts[1]), _fmt(parts[2]))
            paid[k] = after
            last = value
            stamp = stamps[value * STAMP_SLOTS + 84 + int(random() * 192)]  # 07:00 to 23:00 local
            channel = CHANNELS[bisect_left(CHANNEL_CUM, random())]
            payment_txt = str(payment_id)
            payments.append(
                (payment_txt, partner_id, loan_txt, self._ref(partner, 2), amount_txt, CURRENCY, iso[value],
                 stamp, channel, "posted", "", "", ZERO_TXT, stamp)
            )  # fmt: skip
            allocations.append(
                (str(allocation_id), payment_txt, str(first_installment + k), *texts, ZERO_TXT)
            )
            payment_id += 1
            allocation_id += 1
        self.count["payments"] += payment_id - next_id[Payment]
        next_id[Payment], next_id[Allocation] = payment_id, allocation_id

        # The installments, and the delinquency figures delinquency_refresh would compute (penalty aside).
        installments = out.rows[Installment]
        oldest = None
        overdue_p = overdue_i = overdue_f = outstanding = 0
        for k in range(n):
            row, due, done = sched[k], dues[k], paid[k]
            if done is row[PARTS]:  # paid in full
                tail = row[PAID_TAIL]
            else:
                pp, ip, fp = done or (0, 0, 0)
                if done is None:
                    tail = row[UNPAID_TAIL]
                else:  # part-paid
                    tail = (*row[UNPAID_TAIL][:4], _fmt(pp), _fmt(ip), _fmt(fp), ZERO_TXT, FALSE)
                if oldest is None:
                    oldest = due
                outstanding += row[PRINCIPAL] - pp
                if due < as_of:
                    overdue_p += row[PRINCIPAL] - pp
                    overdue_i += row[INTEREST] - ip
                    overdue_f += row[FEE] - fp
            installments.append(
                (str(first_installment + k), loan_txt, "1", NUMBERS[k], iso[due], *tail, ZERO_TXT, ZERO_TXT)
            )
        next_id[Installment] += n
        self.count["installments"] += n

        if oldest is None:
            status, closed_on, oldest_txt, bucket = "paid_off", iso[last], "", "current"
            self.count["paid_off"] += 1
        else:
            status, closed_on, oldest_txt = "active", "", iso[oldest]
            bucket = bucket_for(max(0, as_of - oldest), product.grace)
        at_risk = TRUE if random() < (0.03 if behaviour == ON_TIME else 0.3) else FALSE
        created = stamps[start * STAMP_SLOTS + 108 + int(random() * 144)]  # 09:00 to 21:00 local
        out.rows[Loan].append(
            (loan_txt, partner_id, str(borrower_id), product.id_txt, self._ref(partner, 1), CURRENCY,
             _fmt(principal * 100), rate, NUMBERS[term - 1], iso[start], iso[first_due], status, closed_on,
             "1", at_risk, created, oldest_txt, _fmt(overdue_p), _fmt(overdue_i), _fmt(overdue_f), ZERO_TXT,
             _fmt(outstanding), bucket, "")
        )  # fmt: skip
        next_id[Loan] += 1


# --- writing ---------------------------------------------------------------------------------------


TEXT_MODELS = (Loan, Installment, Payment, Allocation)  # see _Tables


def _attname(model: type[models.Model], column: str) -> str:
    return next(f.name for f in model._meta.concrete_fields if f.column == column)


def _sql_columns(model: type[models.Model]) -> tuple[str, str]:
    quote = connection.ops.quote_name
    return quote(model._meta.db_table), ", ".join(quote(c) for c in COLUMNS[model])


class _SqlWriter:
    """Other databases (SQLite): ``executemany`` INSERTs.

    Not ``bulk_create``: its ``auto_now``/``auto_now_add`` handling would overwrite the back-dated
    timestamps, and the rows are already in column order.
    """

    def write(self, tables: _Tables) -> None:
        with connection.cursor() as cursor:
            for model in WRITE_ORDER:
                rows = tables.rows[model]
                if not rows:
                    continue
                nullable = [
                    i for i, c in enumerate(COLUMNS[model]) if model._meta.get_field(_attname(model, c)).null
                ]
                if model in TEXT_MODELS and nullable:  # "" is NULL there
                    rows = [
                        tuple(None if v == "" and i in nullable else v for i, v in enumerate(r)) for r in rows
                    ]
                table, columns = _sql_columns(model)
                marks = ", ".join(["%s"] * len(COLUMNS[model]))
                cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)  # noqa: S608

    def close(self) -> None:
        pass


class _CopyWriter:
    """PostgreSQL: ``COPY ... FROM STDIN`` per table and batch, in a second thread.

    The batch is turned into CSV here; the thread only streams it, and psycopg2 lets go of the GIL
    while it waits on the server, so the next batch is generated while the server stores this one.
    At most one batch is in flight. The thread uses the same connection, hence the same transaction;
    nothing else touches the connection until ``close``.
    """

    def __init__(self) -> None:
        connection.ensure_connection()
        self.raw = connection.connection
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seed-demo-copy")
        self.pending: Future | None = None
        self.statements = {}
        for model in WRITE_ORDER:
            table, columns = _sql_columns(model)
            # An empty unquoted CSV field is NULL; text columns that are NOT NULL take it as ''.
            not_null_text = ", ".join(
                connection.ops.quote_name(f.column)
                for f in model._meta.concrete_fields
                if isinstance(f, models.CharField) and not f.null
            )
            force = f", FORCE_NOT_NULL ({not_null_text})" if not_null_text else ""
            self.statements[model] = f"COPY {table} ({columns}) FROM STDIN WITH (FORMAT csv{force})"

    def write(self, tables: _Tables) -> None:
        payload = []
        for model in WRITE_ORDER:
            rows = tables.rows[model]
            if not rows:
                continue
            if model in TEXT_MODELS:
                text = "\n".join(map(",".join, rows)) + "\n"
            else:
                buffer = io.StringIO()
                csv.writer(buffer, lineterminator="\n").writerows(rows)
                text = buffer.getvalue()
            rows.clear()
            payload.append((self.statements[model], text.encode()))
        self._wait()
        self.pending = self.pool.submit(self._copy, payload)

    def _copy(self, payload: list[tuple[str, bytes]]) -> None:
        with self.raw.cursor() as cursor:
            for statement, data in payload:
                cursor.copy_expert(statement, io.BytesIO(data), size=1 << 20)

    def _wait(self) -> None:
        if self.pending is not None:
            pending, self.pending = self.pending, None
            pending.result()

    def close(self) -> None:
        try:
            self._wait()
        finally:
            self.pool.shutdown(wait=True)


class _BulkLoad:
    """A large load on PostgreSQL: secondary indexes, unique, exclusion and foreign-key constraints
    off during the COPY, then rebuilt.

    PostgreSQL's advice for populating a database: building an index once over the loaded rows is
    much cheaper than updating it row by row, and adding a foreign key checks all rows in one join.
    Measured here on 1M loans: the installments' GiST exclusion constraint (migration 0002) costs
    ~20 us per row inserted (its index outgrows shared_buffers) but ~11 us per row built afresh.
    The definitions are read from the catalogue (``pg_get_indexdef``, ``pg_get_constraintdef``), so
    whatever the tables have is restored as it was, with the same names. DDL is transactional: on
    any failure the rollback brings everything back. Primary keys and CHECK constraints stay, and
    so do unique constraints that another table's foreign key depends on. The tables are locked
    (ACCESS EXCLUSIVE) until the commit.
    """

    def __init__(self, tables: tuple[str, ...]) -> None:
        self.tables = list(tables)
        self.restore: list[tuple[str, str]] = []  # (contype or "i" for an index, statement)

    def drop(self) -> None:
        quote = connection.ops.quote_name
        with connection.cursor() as cursor:
            cursor.execute(
                """
                SELECT con.conrelid::regclass::text, con.conname, pg_get_constraintdef(con.oid), con.contype
                FROM pg_constraint AS con
                WHERE con.conrelid = ANY(%(tables)s::regclass[]) AND con.contype IN ('f', 'u', 'x')
                  AND (con.contype = 'f' OR NOT EXISTS (
                      SELECT 1 FROM pg_constraint AS ref
                      WHERE ref.contype = 'f' AND ref.conindid = con.conindid
                        AND NOT ref.conrelid = ANY(%(tables)s::regclass[])))
                ORDER BY con.contype <> 'f', con.conname
                """,
                {"tables": self.tables},
            )
            constraints = cursor.fetchall()
            cursor.execute(
                """
                SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
                FROM pg_index AS i
                WHERE i.indrelid = ANY(%(tables)s::regclass[]) AND NOT i.indisprimary
                  AND NOT EXISTS (SELECT 1 FROM pg_constraint AS con
                                  WHERE con.conindid = i.indexrelid AND con.conrelid = i.indrelid)
                ORDER BY 1
                """,
                {"tables": self.tables},
            )
            indexes = cursor.fetchall()
            # Foreign keys first (they may depend on a unique index), then constraints, then indexes.
            for table, name, _definition, _kind in constraints:
                cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {quote(name)}")
            for name, _definition in indexes:
                cursor.execute(f"DROP INDEX {name}")
        # Rebuilt in the opposite order: indexes, unique and exclusion constraints, foreign keys.
        self.restore = [("i", definition) for _name, definition in indexes] + [
            (kind, f"ALTER TABLE {table} ADD CONSTRAINT {quote(name)} {definition}")
            for table, name, definition, kind in sorted(constraints, key=lambda c: c[3] == "f")
        ]

    def rebuild(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL maintenance_work_mem = '1GB'")
            cursor.execute("SHOW effective_cache_size")
            cache_size = cursor.fetchone()[0]
            for kind, statement in self.restore:
                if kind == "x":
                    # A GiST build switches to its buffering mode once the index outgrows
                    # effective_cache_size; buffering builds this one ~20% faster. Planner setting only.
                    cursor.execute("SET LOCAL effective_cache_size = '16MB'")
                cursor.execute(statement)
                if kind == "x":
                    cursor.execute("SELECT set_config('effective_cache_size', %s, true)", [cache_size])
        self.restore = []


# --- reset, ids, users -----------------------------------------------------------------------------

BOOK_TABLES = tuple(model._meta.db_table for model in WRITE_ORDER)


def _reset(partner_ids: list[int]) -> None:
    """Delete the demo partners' loan book, children first; other partners' rows stay."""
    if not partner_ids:
        return
    vendor = connection.vendor
    with connection.cursor() as cursor:
        if vendor == "postgresql":
            others = (
                "SELECT EXISTS (SELECT 1 FROM loans_borrower WHERE partner_id <> ALL(%(ids)s))"
                " OR EXISTS (SELECT 1 FROM loans_loan WHERE partner_id <> ALL(%(ids)s))"
                " OR EXISTS (SELECT 1 FROM loans_payment WHERE partner_id <> ALL(%(ids)s))"
            )
            cursor.execute(others, {"ids": partner_ids})
            if not cursor.fetchone()[0]:
                # The whole book is demo data: TRUNCATE is instant where DELETE of millions of rows is not.
                # It refuses when another table has a foreign key to these; then DELETE below does the work.
                try:
                    with transaction.atomic():
                        cursor.execute(f"TRUNCATE {', '.join(BOOK_TABLES[::-1])}")
                    return
                except DatabaseError:
                    pass
        # Only %s placeholders go into the SQL text; the partner ids are parameters.
        marks = ", ".join(["%s"] * len(partner_ids))
        payments = f"SELECT id FROM loans_payment WHERE partner_id IN ({marks})"  # noqa: S608
        loans = f"SELECT id FROM loans_loan WHERE partner_id IN ({marks})"  # noqa: S608
        borrowers = f"SELECT id FROM loans_borrower WHERE partner_id IN ({marks})"  # noqa: S608
        installments = f"SELECT id FROM loans_installment WHERE loan_id IN ({loans})"  # noqa: S608
        statements = (  # children first; (SQL, how many times the ids are passed)
            (f"DELETE FROM loans_allocation WHERE payment_id IN ({payments})", 1),  # noqa: S608
            (f"DELETE FROM loans_allocation WHERE installment_id IN ({installments})", 1),  # noqa: S608
            (f"DELETE FROM loans_payment WHERE partner_id IN ({marks}) OR loan_id IN ({loans})", 2),  # noqa: S608
            (f"DELETE FROM loans_installment WHERE loan_id IN ({loans})", 1),  # noqa: S608
            (f"DELETE FROM loans_loan WHERE partner_id IN ({marks}) OR borrower_id IN ({borrowers})", 2),  # noqa: S608
            (f"DELETE FROM loans_contactpoint WHERE borrower_id IN ({borrowers})", 1),  # noqa: S608
            (f"DELETE FROM loans_borrower WHERE partner_id IN ({marks})", 1),  # noqa: S608
        )
        try:
            with transaction.atomic():
                for sql, times in statements:
                    cursor.execute(sql, partner_ids * times)
        except IntegrityError as exc:
            first_line = str(exc).strip().splitlines()[0]
            raise DemoError(
                f"Cannot reset the demo book: other records refer to it ({first_line})."
            ) from None


def _first_ids() -> dict[type[models.Model], int]:
    """The first free id per table: past both the highest row and (on PostgreSQL) the sequence."""
    first = {}
    with connection.cursor() as cursor:
        for model in WRITE_ORDER:
            table = model._meta.db_table
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) FROM {connection.ops.quote_name(table)}")  # noqa: S608
            highest = cursor.fetchone()[0]
            if connection.vendor == "postgresql":
                cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
                cursor.execute(f"SELECT last_value FROM {cursor.fetchone()[0]}")  # noqa: S608
                highest = max(highest, cursor.fetchone()[0])
            first[model] = highest + 1
    return first


def _move_sequences(
    next_ids: dict[type[models.Model], int], first_ids: dict[type[models.Model], int]
) -> None:
    if connection.vendor != "postgresql":
        return  # SQLite's AUTOINCREMENT follows the highest id inserted
    with connection.cursor() as cursor:
        for model in WRITE_ORDER:
            if next_ids[model] > first_ids[model]:
                cursor.execute(
                    "SELECT setval(pg_get_serial_sequence(%s, 'id'), %s)",
                    [model._meta.db_table, next_ids[model] - 1],
                )


DEMO_USERS = (
    ("collector", "collector"),
    ("supervisor", "supervisor"),
    # Approves waivers above the policy's supervisor limit.
    ("senior", "senior_supervisor"),
    ("compliance", "compliance_officer"),
    ("admin", None),
)
DEMO_GROUPS = ("collector", "supervisor", "senior_supervisor", "compliance_officer")


def ensure_demo_users() -> list[tuple[str, str, str]]:
    """The demo groups and staff users; each run gives each user a new password. (user, password, role)."""
    groups = {name: Group.objects.get_or_create(name=name)[0] for name in DEMO_GROUPS}
    user_model = get_user_model()
    created = []
    for username, group in DEMO_USERS:
        user, _new = user_model.objects.get_or_create(username=username)
        user.is_staff = True
        user.is_active = True
        user.is_superuser = group is None
        password = secrets.token_urlsafe(9)
        user.set_password(password)
        user.save()
        if group:
            user.groups.add(groups[group])
        created.append((username, password, group or "superuser"))
    return created


# --- entry point -----------------------------------------------------------------------------------

# From this many loans on, PostgreSQL loads with secondary indexes and constraints off (``_BulkLoad``).
BULK_LOAD_MIN_LOANS = 50_000


def seed_demo(
    *,
    loans: int,
    seed: int = 42,
    as_of: date,
    reset: bool = False,
    users: bool = True,
    progress: bool = False,
    batch_size: int = DEFAULT_BATCH_SIZE,
    notify: Callable[[str], None] | None = None,
) -> SeedResult:
    """Build the demo book of ``loans`` loans as of ``as_of``; see the module docstring.

    ``progress`` shows a tqdm bar; ``notify`` (if given) hears about the slow phases after it.
    """
    if isinstance(loans, bool) or not isinstance(loans, int) or loans < 1:
        raise DemoError(f"--loans must be a whole number of at least 1, got {loans!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise DemoError(f"--batch-size must be at least 1, got {batch_size!r}.")
    if not date(2000, 1, 1) <= as_of <= date(2100, 12, 31):
        raise DemoError(f"--as-of must be between 2000-01-01 and 2100-12-31, got {as_of.isoformat()}.")
    vendor = connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise DemoError(f"seed_demo supports PostgreSQL and SQLite, not {vendor}.")
    _check_columns()
    say = notify or (lambda message: None)

    started = time.monotonic()
    result = SeedResult(as_of=as_of)
    with transaction.atomic():
        if vendor == "postgresql":
            with connection.cursor() as cursor:
                # No concurrent writer may take the ids assigned here; readers go on.
                cursor.execute(f"LOCK TABLE {', '.join(BOOK_TABLES)} IN EXCLUSIVE MODE")
                # Check foreign keys per statement, not all at commit: the trigger queue stays small.
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        demo_codes = [code for code, _name in DEMO_PARTNERS]
        if reset:
            _reset(sorted(Partner.objects.filter(code__in=demo_codes).values_list("id", flat=True)))
        elif Loan.objects.exists() or Borrower.objects.filter(partner__code__in=demo_codes).exists():
            raise DemoError(
                f"The database holds {Loan.objects.count():,} loans already;"
                " pass --reset to replace the demo partners' book."
            )

        partners = {}
        for code, name in DEMO_PARTNERS:
            partner, _new = Partner.objects.update_or_create(
                code=code, defaults={"name": name, "is_active": True, **DEMO_PARTNER_DETAILS.get(code, {})}
            )
            partners[code] = partner.id
        products = [(spec, _product(spec)) for spec in DEMO_PRODUCTS]

        first_ids = _first_ids()
        generator = _Generator(
            seed=seed, as_of=as_of, vendor=vendor, partners=partners, products=products, first_ids=first_ids
        )
        bulk = _BulkLoad(BOOK_TABLES) if vendor == "postgresql" and loans >= BULK_LOAD_MIN_LOANS else None
        if bulk:
            bulk.drop()
        writer = _CopyWriter() if vendor == "postgresql" else _SqlWriter()
        try:
            with tqdm(total=loans, unit=" loans", unit_scale=True, disable=not progress) as bar:
                done = 0
                while done < loans:
                    count = min(batch_size, loans - done)
                    writer.write(generator.batch(count))
                    done += count
                    bar.update(count)
        finally:
            writer.close()
        if bulk:
            say("Rebuilding indexes and constraints ...")
            bulk.rebuild()
        _move_sequences(generator.next_id, first_ids)

        say("Refreshing delinquency ...")
        if vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE {', '.join(BOOK_TABLES)}")  # statistics for the refresh's plan
        services.delinquency_refresh(as_of=as_of)

        counts = (
            Loan.objects.filter(partner_id__in=partners.values())
            .values("bucket")
            .annotate(n=models.Count("id"))
        )
        buckets = {row["bucket"]: row["n"] for row in counts}
        result.buckets = {b: buckets.get(b, 0) for b in BUCKETS}
        if users:
            result.users = ensure_demo_users()

    result.loans = loans
    result.borrowers = generator.count["borrowers"]
    result.contact_points = generator.count["contact_points"]
    result.installments = generator.count["installments"]
    result.payments = generator.count["payments"]
    result.paid_off = generator.count["paid_off"]
    result.seconds = time.monotonic() - started
    return result


def _product(spec: ProductSpec) -> LoanProduct:
    rates = [Decimal(r) for r in spec.rates]
    product, _new = LoanProduct.objects.update_or_create(
        code=spec.code,
        defaults={
            "name": spec.name,
            "currency": CURRENCY,
            "repayment_method": spec.method.value,
            "frequency": spec.frequency.value,
            "min_principal": Decimal(spec.principals[0]),
            "max_principal": Decimal(spec.principals[1]),
            "min_rate": min(rates),
            "max_rate": max(rates),
            "min_term": min(spec.terms),
            "max_term": max(spec.terms),
            "grace_days": spec.grace_days,
            "penalty_rate": Decimal(spec.penalty_rate),
            "installment_fee": Decimal(spec.fee),
            "allocation_order": spec.allocation_order,
            "is_active": True,
        },
    )
    return product


def parse_as_of(value: str | None) -> date:
    """``--as-of`` as a date (default: today in settings.TIME_ZONE)."""
    if value is None:
        return timezone.localdate()
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
            raise ValueError(value)
        return date.fromisoformat(value)
    except ValueError:
        raise DemoError(f"--as-of must be a date as YYYY-MM-DD, got {value!r}.") from None


__all__ = [
    "DEMO_PARTNERS",
    "DEMO_PARTNER_DETAILS",
    "DEMO_PRODUCTS",
    "DemoError",
    "SeedResult",
    "ensure_demo_users",
    "parse_as_of",
    "seed_demo",
]

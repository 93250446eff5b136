"""Language screening: notice templates and free-text notes against editable lexicons.

Templates that match are refused (``template_text_validate`` raises, so the template cannot be
saved); notes that match are kept and flagged for a compliance officer (``note_screen``), because a
note records what happened and must never be lost. The lexicon is data (``LexiconTerm``), edited in
the admin through ``lexicon_term_save``, which validates the term and audits the edit.

Matching. The text is normalised first (``normalise``): NFKC (full-width letters and digits become
ASCII, compatibility ideographs become the unified ones, the ideographic space a space), curly
quotes become straight ones, invisible format characters (zero-width space and joiners, soft hyphen)
are dropped, whitespace is collapsed, and whitespace or filler (``*``, ``.``, ``_``, ``-``, ``·``,
``|``, ``/``, ``~`` and the like) *between two Chinese characters* is removed, since Chinese is
written without spaces: "爆 通 讯 录" and "爆*通*讯*录" read as "爆通讯录".
Every term is then matched case-insensitively:

- a plain phrase that starts or ends with a Latin letter or digit matches whole words only there
  ("liar" does not match "familiar", "scum" not "scumbag"), and its last word may carry a plural
  "s"/"es" ("deadbeats"); spaces in it match any run of whitespace;
- a plain Chinese phrase matches as a substring;
- a regular expression term is used as written (``re.IGNORECASE``); phrasings that lawful notices
  share with threats (法院, 征信, "court") belong in regular expressions with context, not plain
  phrases.

Offsets in a ``Match`` point into the text as given, not the normalised one, so a reviewer's screen
can highlight exactly what matched.

Caching. The active lexicon is compiled once per process and reused while a fingerprint of the
table stays the same. The fingerprint costs two small aggregate queries per screening (the table's
row count and highest id, the history table's highest id), plus a process-local generation that
``post_save``/``post_delete`` on ``LexiconTerm`` bump. Every edit made through the ORM (the
service, the admin, a shell ``save()``/``delete()``) writes a simple-history row, so another
process sees it at its next screening; this process sees it at once (the signal), even when a
rolled-back test reuses ids. A time-based cache (TTL) would let a withdrawn or added term lag; a
cache-version key in Django's cache would need a shared cache backend, which the project does not
require. What escapes the fingerprint: ``QuerySet.update()`` and raw SQL, which write no history;
call ``lexicon_cache_clear`` in this process and restart the others after those.
"""

from __future__ import annotations

import re
import threading
import unicodedata
from dataclasses import asdict, dataclass

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Max
from django.db.models.signals import post_delete, post_save
from django.forms.models import model_to_dict
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from compliance.audit import audit_record
from compliance.models import AuditEventType, LexiconTerm, ScreeningFlag
from loans.exceptions import field_error

__all__ = [
    "Match",
    "lexicon_cache_clear",
    "lexicon_term_save",
    "normalise",
    "note_screen",
    "screen_text",
    "screening_flag_review",
    "template_text_validate",
]

# Messages, kept here so tests and callers can compare with them.
MSG_TEMPLATE_BLOCKED = _("Not allowed in a notice (%(category)s): “%(text)s”.")
MSG_NOT_ALLOWED = _("You are not allowed to do this.")
MSG_ALREADY_REVIEWED = _("This flag was reviewed already.")
MSG_REVIEW_NOTE_REQUIRED = _("Write what the review found.")
MSG_REVIEW_NOTE_TOO_LONG = _("At most 500 characters.")
MSG_PHRASE_REQUIRED = _("Enter a phrase.")
MSG_BAD_REGEX = _("Not a valid regular expression: %(error)s.")
MSG_REGEX_MATCHES_EMPTY = _("This regular expression matches empty text, so it would flag everything.")
MSG_PHRASE_DUPLICATE = _("This language has this phrase already.")
MSG_SOURCE_REQUIRED = _("Say where the note comes from.")

LEXICON_FIELDS = ("category", "language", "phrase", "is_regex", "is_active", "note")
REVIEW_PERMISSION = "compliance.review_screening_flags"


@dataclass(frozen=True)
class Match:
    """One lexicon term found in a text. ``start``/``end`` index the original text; ``text`` is
    ``original[start:end]``."""

    category: str
    language: str
    phrase: str
    is_regex: bool
    text: str
    start: int
    end: int
    term_id: int | None = None

    @property
    def category_label(self) -> str:
        return str(LexiconTerm.Category(self.category).label)

    def as_dict(self) -> dict:
        return asdict(self)


# --- normalisation -------------------------------------------------------------------------------

# NFKC leaves typographic quotes alone; collectors type both.
_QUOTES = str.maketrans({"‘": "'", "’": "'", "‛": "'", "′": "'", "“": '"', "”": '"', "„": '"'})
# Dropped when they stand between two Chinese characters (besides whitespace): the usual fillers
# typed to get a word past a filter. Sentence punctuation (，。、！？) is kept: it separates clauses.
_CJK_FILLER = frozenset("*._-·•・|/\\~+")


def _is_cjk(char: str) -> bool:
    code = ord(char)
    return (
        0x4E00 <= code <= 0x9FFF
        or 0x3400 <= code <= 0x4DBF
        or 0xF900 <= code <= 0xFAFF
        or 0x20000 <= code <= 0x3134F
    )


def normalise(text: str) -> tuple[str, list[int]]:
    """The text as matching sees it, and for each of its characters the index of the original
    character it came from."""
    chars: list[str] = []
    origin: list[int] = []
    for index, char in enumerate(text or ""):
        if unicodedata.category(char) == "Cf":  # zero-width space and joiners, soft hyphen, BOM
            continue
        for out in unicodedata.normalize("NFKC", char).translate(_QUOTES):
            chars.append(" " if out.isspace() else out)
            origin.append(index)

    result: list[str] = []
    result_origin: list[int] = []
    i, n = 0, len(chars)
    while i < n:
        char = chars[i]
        if char == " " or char in _CJK_FILLER:
            j = i
            while j < n and (chars[j] == " " or chars[j] in _CJK_FILLER):
                j += 1
            if result and _is_cjk(result[-1]) and j < n and _is_cjk(chars[j]):
                i = j  # "爆 通 讯 录", "爆*通*讯*录": one word
                continue
            # Elsewhere keep the fillers (a hyphenated word, a date) and collapse the spaces.
            for k in range(i, j):
                if chars[k] == " " and result and result[-1] == " ":
                    continue
                result.append(chars[k])
                result_origin.append(origin[k])
            i = j
            continue
        result.append(char)
        result_origin.append(origin[i])
        i += 1
    return "".join(result), result_origin


# --- the compiled lexicon ------------------------------------------------------------------------

_WORD_EDGE = "0-9A-Za-z\u00c0-\u024f"


@dataclass(frozen=True)
class _Compiled:
    term_id: int
    category: str
    language: str
    phrase: str
    is_regex: bool
    pattern: re.Pattern


def _phrase_pattern(phrase: str) -> str:
    """A plain phrase as a regular expression: whole words at Latin edges, any whitespace inside."""
    normalised, _origin = normalise(phrase)
    normalised = normalised.strip()
    words = normalised.split(" ")
    body = r"\s+".join(re.escape(word) for word in words)
    if re.match(f"[{_WORD_EDGE}]", normalised):
        body = f"(?<![{_WORD_EDGE}]){body}"
    if re.search("[A-Za-z]$", normalised):
        body = f"{body}(?:e?s)?(?![{_WORD_EDGE}])"
    elif re.search(f"[{_WORD_EDGE}]$", normalised):
        body = f"{body}(?![{_WORD_EDGE}])"
    return body


def compile_term(*, phrase: str, is_regex: bool) -> re.Pattern:
    """Raises ``re.error`` for a bad regular expression."""
    return re.compile(phrase if is_regex else _phrase_pattern(phrase), re.IGNORECASE)


class _LexiconCache:
    def __init__(self):
        self.lock = threading.Lock()
        self.generation = 0
        self.key = None
        self.terms: tuple[_Compiled, ...] = ()

    def bump(self, **kwargs):
        with self.lock:
            self.generation += 1


_cache = _LexiconCache()


def lexicon_cache_clear() -> None:
    """Forget the compiled lexicon in this process (after ``update()`` or raw SQL on the table)."""
    _cache.bump()


def _fingerprint() -> tuple:
    table = LexiconTerm.objects.aggregate(rows=Count("pk"), top=Max("pk"))
    history = LexiconTerm.history.model.objects.aggregate(top=Max("history_id"))
    return (_cache.generation, table["rows"], table["top"], history["top"])


def _active_terms() -> tuple[_Compiled, ...]:
    key = _fingerprint()
    if key == _cache.key:
        return _cache.terms
    compiled = []
    rows = LexiconTerm.objects.filter(is_active=True).order_by("pk")
    for term in rows.only("pk", "category", "language", "phrase", "is_regex"):
        try:
            pattern = compile_term(phrase=term.phrase, is_regex=term.is_regex)
        except re.error:
            continue  # refused by lexicon_term_save; one written around it must not stop screening
        compiled.append(_Compiled(term.pk, term.category, term.language, term.phrase, term.is_regex, pattern))
    with _cache.lock:
        if _cache.generation == key[0]:
            _cache.key, _cache.terms = key, tuple(compiled)
    return tuple(compiled)


post_save.connect(_cache.bump, sender=LexiconTerm, dispatch_uid="screening_lexicon_saved")
post_delete.connect(_cache.bump, sender=LexiconTerm, dispatch_uid="screening_lexicon_deleted")


# --- screening -----------------------------------------------------------------------------------


def screen_text(text: str) -> list[Match]:
    """Every active lexicon term found in the text, in order of position. Empty when clean."""
    if not text or not text.strip():
        return []
    normalised, origin = normalise(text)
    found: dict[tuple, Match] = {}
    for term in _active_terms():
        for hit in term.pattern.finditer(normalised):
            if hit.end() == hit.start():
                continue
            start, end = origin[hit.start()], origin[hit.end() - 1] + 1
            key = (term.term_id, start, end)
            if key not in found:
                found[key] = Match(
                    category=term.category,
                    language=term.language,
                    phrase=term.phrase,
                    is_regex=term.is_regex,
                    text=text[start:end],
                    start=start,
                    end=end,
                    term_id=term.term_id,
                )
    return sorted(found.values(), key=lambda m: (m.start, -m.end, m.category, m.phrase))


def template_text_validate(text: str, *, field: str = "body") -> None:
    """Refuse a notice template's text that matches the lexicon: one error per category and matched
    text, under ``field``."""
    matches = screen_text(text)
    if not matches:
        return
    errors, seen = [], set()
    for match in matches:
        key = (match.category, match.text.casefold())
        if key in seen:
            continue
        seen.add(key)
        errors.append(
            ValidationError(
                MSG_TEMPLATE_BLOCKED,
                code="prohibited_language",
                params={"category": match.category_label, "text": match.text},
            )
        )
    raise ValidationError({field: errors})


@transaction.atomic
def note_screen(*, source: str, source_id, text: str) -> ScreeningFlag | None:
    """Screen a free-text note; when it matches, flag it for review (the note itself is never
    refused). Screening the same text again while its flag waits returns that flag."""
    source = (source or "").strip()
    if not source:
        raise field_error("source", str(MSG_SOURCE_REQUIRED))
    matches = screen_text(text)
    if not matches:
        return None
    source_id = str(source_id)
    waiting = ScreeningFlag.objects.filter(
        source=source[:50], source_id=source_id[:50], reviewed_at__isnull=True, excerpt=text
    ).first()
    if waiting is not None:
        return waiting
    return ScreeningFlag.objects.create(
        source=source[:50],
        source_id=source_id[:50],
        excerpt=text,
        matches=[match.as_dict() for match in matches],
    )


def _require_perm(actor, perm: str) -> None:
    if actor is None or not actor.is_active or not actor.has_perm(perm):
        raise PermissionDenied(MSG_NOT_ALLOWED)


@transaction.atomic
def screening_flag_review(*, flag: ScreeningFlag, actor, note: str) -> ScreeningFlag:
    """A compliance officer closes a flag with what the review found."""
    _require_perm(actor, REVIEW_PERMISSION)
    note = (note or "").strip()
    if not note:
        raise field_error("note", str(MSG_REVIEW_NOTE_REQUIRED))
    if len(note) > 500:
        raise field_error("note", str(MSG_REVIEW_NOTE_TOO_LONG))
    flag = ScreeningFlag.objects.select_for_update().get(pk=flag.pk)
    if flag.reviewed_at is not None:
        raise field_error("flag", str(MSG_ALREADY_REVIEWED))
    flag.reviewed_by, flag.reviewed_at, flag.review_note = actor, timezone.now(), note
    flag.save(update_fields=["reviewed_by", "reviewed_at", "review_note"])
    audit_record(
        event_type=AuditEventType.SCREENING_REVIEW,
        actor=actor,
        subject=flag,
        details={"source": flag.source, "source_id": flag.source_id, "note": flag.review_note},
    )
    return flag


# --- editing the lexicon -------------------------------------------------------------------------


def _clean_phrase(phrase: str, is_regex: bool) -> str:
    phrase = (phrase or "").strip()
    if not is_regex:
        phrase = " ".join(phrase.split())
    if not phrase:
        raise field_error("phrase", str(MSG_PHRASE_REQUIRED), code="required")
    try:
        pattern = compile_term(phrase=phrase, is_regex=is_regex)
    except re.error as exc:
        raise field_error("phrase", str(MSG_BAD_REGEX) % {"error": exc}) from None
    if pattern.search("") is not None:
        raise field_error("phrase", str(MSG_REGEX_MATCHES_EMPTY))
    return phrase


def _snapshot(term: LexiconTerm) -> dict:
    return model_to_dict(term, fields=LEXICON_FIELDS)


@transaction.atomic
def lexicon_term_save(*, term: LexiconTerm | None, actor, **fields) -> LexiconTerm:
    """Create a term (``term=None``) or change one; refuses an empty phrase, a regular expression
    that does not compile or matches empty text, and a phrase the language has already (ignoring
    case). Writes a ``lexicon_edit`` audit event with the term before and after."""
    unknown = set(fields) - set(LEXICON_FIELDS)
    if unknown:
        raise TypeError(f"lexicon_term_save() got unexpected fields: {', '.join(sorted(unknown))}")
    _require_perm(actor, "compliance.add_lexiconterm" if term is None else "compliance.change_lexiconterm")
    if term is None:
        before = None
        term = LexiconTerm()
    else:
        term = LexiconTerm.objects.select_for_update().get(pk=term.pk)
        before = _snapshot(term)
    for name, value in fields.items():
        setattr(term, name, value)
    term.note = (term.note or "").strip()
    term.phrase = _clean_phrase(term.phrase, term.is_regex)
    clash = LexiconTerm.objects.filter(language=term.language, phrase__iexact=term.phrase)
    if term.pk is not None:
        clash = clash.exclude(pk=term.pk)
    if clash.exists():
        raise field_error("phrase", str(MSG_PHRASE_DUPLICATE), code="unique")
    term.full_clean()
    after = _snapshot(term)
    if before == after:
        return term
    term._history_user = actor
    term._change_reason = "lexicon term added" if before is None else "lexicon term changed"
    term.save()
    audit_record(
        event_type=AuditEventType.LEXICON_EDIT,
        actor=actor,
        subject=term,
        details={"action": "create" if before is None else "update", "before": before, "after": after},
    )
    return term

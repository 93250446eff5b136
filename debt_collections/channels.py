"""How notices leave the building: pluggable backends, chosen by settings like Django's e-mail backends.

* E-mail goes through Django's ``EmailMessage`` and so through ``EMAIL_BACKEND`` (SMTP in production,
  the console in development, locmem in tests).
* SMS: ``COLLECTIONS_SMS_BACKEND``, a class with ``send(*, to, text) -> provider reference``.
  ``RecordingSMSBackend`` (the development default) keeps every message in the module-level
  ``outbox`` list, as Django's locmem e-mail backend does, and logs it; ``ConsoleSMSBackend`` prints.
* Letters: ``COLLECTIONS_LETTER_BACKEND``, a class with ``send(*, address, pdf, reference) -> reference``.
  ``FileLetterBackend`` (the default) writes the PDF and its address under ``MEDIA_ROOT/letters/`` for
  a print-and-post service to pick up; ``RecordingLetterBackend`` keeps them in ``letter_outbox``.

A backend raises any exception to say delivery failed; the notice is then marked failed with the
message (``debt_collections.notices.notice_send``).
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from email.utils import make_msgid
from pathlib import Path

from django.conf import settings
from django.core.mail import EmailMessage
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SentSMS:
    to: str
    text: str
    ref: str


@dataclass(frozen=True)
class SentLetter:
    address: str
    pdf: bytes
    reference: str


# What the recording backends sent, in order (tests and development look here; clear it at will).
outbox: list[SentSMS] = []
letter_outbox: list[SentLetter] = []


class BaseSMSBackend:
    def send(self, *, to: str, text: str) -> str:
        """Send one text message; return the provider's reference for it."""
        raise NotImplementedError


class RecordingSMSBackend(BaseSMSBackend):
    """Keeps messages in ``outbox`` and logs them (no provider: nothing reaches a phone)."""

    def send(self, *, to: str, text: str) -> str:
        ref = f"sms-{len(outbox) + 1}"
        outbox.append(SentSMS(to=to, text=text, ref=ref))
        logger.info("SMS %s to %s: %s", ref, to, text)
        return ref


class ConsoleSMSBackend(BaseSMSBackend):
    """Writes messages to standard output."""

    def send(self, *, to: str, text: str) -> str:
        ref = make_msgid(domain="sms.local")
        sys.stdout.write(f"--- SMS {ref} to {to}\n{text}\n")
        return ref


class BaseLetterBackend:
    def send(self, *, address: str, pdf: bytes, reference: str) -> str:
        """Hand one letter (a PDF) over for printing and posting; return the reference it goes by."""
        raise NotImplementedError


class RecordingLetterBackend(BaseLetterBackend):
    def send(self, *, address: str, pdf: bytes, reference: str) -> str:
        letter_outbox.append(SentLetter(address=address, pdf=pdf, reference=reference))
        logger.info("letter %s to %s (%d bytes)", reference, address, len(pdf))
        return reference


class FileLetterBackend(BaseLetterBackend):
    """Writes ``<reference>.pdf`` and ``<reference>.address.txt`` under ``MEDIA_ROOT/letters/``."""

    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory or Path(settings.MEDIA_ROOT) / "letters")

    def send(self, *, address: str, pdf: bytes, reference: str) -> str:
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{reference}.pdf"
        path.write_bytes(pdf)
        (self.directory / f"{reference}.address.txt").write_text(address + "\n", encoding="utf-8")
        return str(path.relative_to(self.directory.parent))


def sms_backend() -> BaseSMSBackend:
    return import_string(settings.COLLECTIONS_SMS_BACKEND)()


def letter_backend() -> BaseLetterBackend:
    return import_string(settings.COLLECTIONS_LETTER_BACKEND)()


def email_send(
    *,
    to: str,
    subject: str,
    body: str,
    reply_to: str = "",
    attachments: tuple[tuple[str, bytes, str], ...] = (),
) -> str:
    """Send a plain-text e-mail through ``EMAIL_BACKEND``; return its Message-ID."""
    message_id = make_msgid(domain=settings.COLLECTIONS_NOTICE_EMAIL_DOMAIN)
    message = EmailMessage(
        subject=subject.replace("\n", " "),
        body=body,
        from_email=settings.COLLECTIONS_NOTICE_FROM_EMAIL,
        to=[to],
        reply_to=[reply_to] if reply_to else None,
        headers={"Message-ID": message_id},
    )
    for filename, content, mimetype in attachments:
        message.attach(filename, content, mimetype)
    message.send(fail_silently=False)
    return message_id

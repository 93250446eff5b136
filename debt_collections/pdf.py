"""PDF documents with reportlab: collection letters and the legal-referral evidence summary.

Text is set in reportlab's built-in CID font ``STSong-Light`` (Adobe-GB1), which draws Chinese and
Latin with no font file on the machine, and stays text in the PDF: pypdf extracts it back, which is
how the tests check what a letter says. Documents are built with ``invariant=True``, so the same
content gives the same bytes (no creation time or random id), and a notice re-rendered from its
frozen text for an evidence pack is the letter that was sent.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.sax.saxutils import escape

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

FONT = "STSong-Light"
_registered = False


def _font() -> str:
    global _registered
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
        _registered = True
    return FONT


@dataclass(frozen=True)
class Section:
    """A heading, paragraphs of plain text (newlines kept) and an optional table (first row: header)."""

    heading: str = ""
    paragraphs: Sequence[str] = ()
    table: Sequence[Sequence[object]] = field(default_factory=tuple)


def _styles() -> dict[str, ParagraphStyle]:
    font = _font()
    body = ParagraphStyle("body", fontName=font, fontSize=10.5, leading=16, wordWrap="CJK", spaceAfter=4)
    return {
        "title": ParagraphStyle("title", parent=body, fontSize=16, leading=22, spaceAfter=10),
        "heading": ParagraphStyle("heading", parent=body, fontSize=12.5, leading=18, spaceBefore=8),
        "body": body,
        "cell": ParagraphStyle("cell", parent=body, fontSize=8.5, leading=11, spaceAfter=0),
    }


def _para(text: object, style: ParagraphStyle) -> Paragraph:
    # Plain text in, never markup: escape it, and keep the author's line breaks.
    return Paragraph(escape(str(text)).replace("\n", "<br/>"), style)


def render_pdf(*, title: str, sections: Sequence[Section], footer: str = "") -> bytes:
    """Lay out a document and return the PDF bytes."""
    styles = _styles()
    story: list = [_para(title, styles["title"])]
    for section in sections:
        if section.heading:
            story.append(_para(section.heading, styles["heading"]))
        for paragraph in section.paragraphs:
            story.append(_para(paragraph, styles["body"]))
        if section.table:
            rows = [[_para(cell, styles["cell"]) for cell in row] for row in section.table]
            table = Table(rows, repeatRows=1, hAlign="LEFT")
            table.setStyle(
                TableStyle(
                    [
                        ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                        ("BACKGROUND", (0, 0), (-1, 0), colors.whitesmoke),
                        ("VALIGN", (0, 0), (-1, -1), "TOP"),
                    ]
                )
            )
            story.append(table)
        story.append(Spacer(1, 3 * mm))

    def _footer(canvas, doc):
        canvas.saveState()
        canvas.setFont(_font(), 8)
        canvas.drawString(18 * mm, 10 * mm, f"{footer}  {doc.page}" if footer else str(doc.page))
        canvas.restoreState()

    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=18 * mm,
        bottomMargin=18 * mm,
        title=title,
        invariant=True,
    )
    doc.build(story, onFirstPage=_footer, onLaterPages=_footer)
    return buffer.getvalue()


def letter_pdf(*, subject: str, body: str, footer: str = "") -> bytes:
    """A letter: its subject as the title, its body paragraph by paragraph (blank lines split them)."""
    paragraphs = [p.strip() for p in body.replace("\r\n", "\n").split("\n\n") if p.strip()]
    return render_pdf(title=subject, sections=[Section(paragraphs=paragraphs)], footer=footer)

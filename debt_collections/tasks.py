"""Celery tasks of the collections scan: thin wrappers around ``debt_collections.scan``.

``debt_collections.scan`` (beat runs it nightly) plans the run and fans its chunks out as a group
whose chord callback finishes the run, so the workers of every machine share one scan. Without a
broker the same chunks run one after another in-process. Every task is safe to retry: a done chunk
is never run twice and a chunk that another worker holds is skipped.
"""

from __future__ import annotations

import logging
from datetime import date, datetime

from celery import chord, group, shared_task
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from debt_collections import scan as scanning

logger = logging.getLogger(__name__)


def _date(value: str | None) -> date:
    return date.fromisoformat(value) if value else timezone.localdate()


@shared_task(name="debt_collections.scan", bind=True)
def scan(
    self, as_of: str | None = None, full: bool = False, force: bool = False, chunk_size: int | None = None
) -> dict:
    """Start the scan for a business date (default today in TIME_ZONE).

    An earlier run left unfinished (a worker died) is resumed first; the date asked for follows
    when it is done. Returns what was started, or ``{"busy": ...}`` when another scan holds the lock.
    """
    business_date = _date(as_of)
    chunk_size = chunk_size or settings.COLLECTIONS_SCAN_CHUNK_SIZE
    try:
        if settings.CELERY_TASK_ALWAYS_EAGER:
            return scanning.scan_run(
                as_of=business_date, full=full, force=force, chunk_size=chunk_size
            ).as_dict()
        with scanning.scan_lock():
            earlier = scanning.unfinished_before(business_date)
            if earlier:
                run, then = earlier[0], business_date.isoformat()
            else:
                run, already_done = scanning.plan_run(
                    as_of=business_date, full=full, force=force, chunk_size=chunk_size
                )
                then = None
                if already_done:
                    return scanning.summarise(run, already_done=True).as_dict()
            chunk_ids = list(
                run.chunks.filter(status="pending").order_by("number").values_list("id", flat=True)
            )
            # The chunks and the finish go to the queue this task came from, so the workers that
            # serve scans serve their chunks too (without it they would go to the default queue).
            queue = (self.request.delivery_info or {}).get("routing_key")
            options = {"queue": queue} if queue else {}
            finish = scan_finish.si(run.pk, then_as_of=then, full=full, chunk_size=chunk_size).set(**options)
            if chunk_ids:
                header = group(scan_chunk.si(chunk_id).set(**options) for chunk_id in chunk_ids)
                chord(header, finish).apply_async(**options)
            else:
                finish.apply_async(**options)
    except scanning.ScanBusy as exc:
        return {"as_of": business_date.isoformat(), "busy": str(exc)}
    except scanning.ScanRefused as exc:
        logger.error("collections scan for %s refused: %s", business_date, exc)
        return {"as_of": business_date.isoformat(), "refused": str(exc)}
    return {
        "as_of": run.as_of.isoformat(),
        "run_id": run.pk,
        "chunks_dispatched": len(chunk_ids),
        "then": then,
    }


@shared_task(
    name="debt_collections.scan_chunk",
    autoretry_for=(OperationalError,),
    retry_backoff=True,
    max_retries=5,
)
def scan_chunk(chunk_id: int) -> dict | None:
    """One chunk of a run: refresh, cases, transitions, history and events in one transaction."""
    return scanning.process_chunk(chunk_id)


@shared_task(name="debt_collections.scan_finish", bind=True)
def scan_finish(
    self, run_id: int, then_as_of: str | None = None, full: bool = False, chunk_size: int | None = None
) -> dict:
    """Close a run whose chunks are all done, then start the next date if one was waiting."""
    done = scanning.finish_run(run_id)
    summary = scanning.summarise(scanning.ScanRun.objects.get(pk=run_id)).as_dict()
    if done and then_as_of:
        scan.apply_async(
            kwargs={"as_of": then_as_of, "full": full, "chunk_size": chunk_size},
            queue=(self.request.delivery_info or {}).get("routing_key"),
        )
    return summary


@shared_task(name="debt_collections.notices_send_queued")
def notices_send_queued(as_of: str | None = None, limit: int | None = None) -> dict:
    """Send the queued notices (beat: every 30 minutes), in batches of ``COLLECTIONS_NOTICE_BATCH``
    handed to the workers as a group (in-process without a broker): the first night of a large book
    queues a notice or more per case opened. Safe to retry: a sent notice is never sent
    again, and one the contact rules hold back (quiet hours) is not tried before they end."""
    from debt_collections import notices

    day, at = notices.send_arguments(as_of=_date(as_of), limit=limit, at=None)
    ids = notices.queued_notice_ids(as_of=day, at=at, limit=limit)
    size = settings.COLLECTIONS_NOTICE_BATCH
    batches = [ids[i : i + size] for i in range(0, len(ids), size)]
    group(
        notices_send_batch.s(batch, as_of=day.isoformat(), at=at.isoformat()) for batch in batches
    ).apply_async(queue=(notices_send_queued.request.delivery_info or {}).get("routing_key"))
    return {"notices": len(ids), "batches": len(batches)}


@shared_task(name="debt_collections.notices_send_batch")
def notices_send_batch(ids: list[int], as_of: str, at: str) -> dict:
    """One batch of queued notices (see ``notices_send_queued``)."""
    from debt_collections import notices

    return notices.notices_send_ids(ids, as_of=date.fromisoformat(as_of), at=datetime.fromisoformat(at))

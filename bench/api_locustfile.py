"""The load side of bench/api.py: locust users for the partner API, run headless as a library.

bench/api.py starts it once per scenario, in a process of its own (locust patches the standard
library with gevent, which the Django side of the bench must not see):

    .venv/bin/python bench/api_locustfile.py --config CONFIG.json --scenario single|batch|cases
        --seconds 60 --warmup 5 --users 50 --rate 50 --out RESULT.json

CONFIG.json (written by bench/api.py): ``host``, ``key`` (a partner key, all scopes), ``run`` (a
prefix that keeps this run's external references unique), ``value_date``, ``currency``,
``single_loans`` and ``batch_loans`` (loan ids with room for more payments; the batch users take
disjoint slices, so no two concurrent batches touch one loan), ``batch_size`` and ``case_queries``
(``[{"name": ..., "params": {...}}]``).

Every user sends ``Authorization: Bearer <key>``. The users start spread over one second and run
``--warmup`` seconds before the measured window opens; only requests that end inside the window
count. Latencies are the exact response times locust measured (to the last byte of the body),
percentiles by nearest rank. The result (JSON) also gives this process's CPU time, so a load
generator short of CPU shows. The same users work with the ``locust`` command line
(``API_BENCH_CONFIG=CONFIG.json locust -f bench/api_locustfile.py --headless ...``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import resource
import time
import uuid
from collections import defaultdict
from urllib.parse import urlencode

import gevent
from locust import constant, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment

PAYMENTS = "/api/v1/payments/"
BATCH = "/api/v1/payments/batch/"
CASES = "/api/v1/cases/"
# A few valid amounts, so that the bodies are not all alike.
AMOUNTS = ("100.00", "250.50", "88.88", "120.00", "75.25")

CONFIG: dict = {}
SAMPLES: list[tuple[float, str, float, bool]] = []  # (ended at, name, response time ms, ok)
BATCHES: list[tuple[float, int, int]] = []  # (ended at, accepted, rejected)
FAILURES: dict[str, int] = defaultdict(int)  # "name: status detail" -> count (examples for the report)
IN_FLIGHT = [0]  # requests sent and not yet answered
STOPPING = [False]  # the window has closed: users send nothing more
_counter = itertools.count(1)
_user_index = itertools.count(0)
_single_loans = None
_case_queries = None


def configure(config: dict) -> None:
    global _single_loans, _case_queries
    CONFIG.clear()
    CONFIG.update(config)
    _single_loans = itertools.cycle(config["single_loans"] or [0])
    _case_queries = itertools.cycle(config["case_queries"] or [{"name": "no filter", "params": {}}])


if os.environ.get("API_BENCH_CONFIG"):  # the locust command line
    with open(os.environ["API_BENCH_CONFIG"]) as f:
        configure(json.load(f))


def _payment(loan: int, tag: str) -> dict:
    n = next(_counter)
    return {
        "loan": loan,
        "external_ref": f"{CONFIG['run']}-{tag}{n}",
        "amount": AMOUNTS[n % len(AMOUNTS)],
        "currency": CONFIG["currency"],
        "value_date": CONFIG["value_date"],
    }


def _headers(idempotent: bool = False) -> dict:
    headers = {"Authorization": f"Bearer {CONFIG['key']}", "Accept-Language": "en"}
    if idempotent:
        headers["Idempotency-Key"] = str(uuid.uuid4())
    return headers


def _failure(response, name: str) -> str:
    text = (response.text or "")[:300].replace("\n", " ")
    message = f"{name}: HTTP {response.status_code} {text}"
    FAILURES[message] += 1
    return message


def batch_outcome(body, sent: int) -> tuple[int, int]:
    """(accepted, rejected) items of a batch response.

    Counts from the body's ``accepted``/``rejected`` figures when it gives them, else from its
    per-item ``results`` (an item is accepted when it carries a payment and no errors).
    """
    if isinstance(body, dict):
        summary = body.get("summary") if isinstance(body.get("summary"), dict) else body
        accepted, rejected = summary.get("accepted"), summary.get("rejected")
        if isinstance(accepted, int) and isinstance(rejected, int):
            return accepted, rejected
        if isinstance(accepted, list) and isinstance(rejected, list):
            return len(accepted), len(rejected)
        results = body.get("results")
        if isinstance(results, list):
            ok = sum(
                1
                for item in results
                if isinstance(item, dict)
                and not item.get("errors")
                and (item.get("status") in ("accepted", "posted", "created", 201) or "payment" in item)
            )
            return ok, len(results) - ok
    return 0, sent


def poisson_throughput(rate: float):
    """Like locust's ``constant_throughput(rate)``, with exponential gaps between a user's request
    starts: the users' requests together arrive as a Poisson process at users x rate a second, as
    independent clients do. (With constant gaps the users fire in step, so every second a burst of
    them queues behind the two workers and the measured latency is the burst's, not the rate's.)"""

    def wait_time(self):
        now = time.monotonic()
        self._next_start = max(getattr(self, "_next_start", now) + random.expovariate(rate), now)  # noqa: S311
        return self._next_start - now

    return wait_time


class ApiUser(FastHttpUser):
    """Once the window closes, sends nothing more: run() waits for the requests still in flight, so
    the server is idle before the next scenario starts."""

    abstract = True
    connection_timeout = 30.0
    network_timeout = 300.0

    def request(self, method: str, path: str, **kwargs):
        if STOPPING[0]:
            gevent.sleep(1)
            return None
        IN_FLIGHT[0] += 1
        try:
            return self.client.request(method, path, catch_response=True, **kwargs)
        finally:
            IN_FLIGHT[0] -= 1


class SinglePaymentUser(ApiUser):
    """POST /api/v1/payments/, one payment, each to the next loan of the single-payment pool."""

    wait_time = poisson_throughput(1)

    @task
    def post_payment(self):
        name = f"POST {PAYMENTS}"
        body = _payment(next(_single_loans), "s")
        response = self.request("POST", PAYMENTS, json=body, headers=_headers(idempotent=True), name=name)
        if response is None:
            return
        with response:
            if response.status_code != 201:
                response.failure(_failure(response, name))


class BatchUser(ApiUser):
    """POST /api/v1/payments/batch/ with ``batch_size`` payments to distinct loans, back to back.

    User i of n takes every n-th loan of the batch pool, so concurrent batches share no loan.
    """

    wait_time = constant(0)
    users = 1  # set by run() to the number of users

    def on_start(self):
        index = next(_user_index) % self.users
        loans = CONFIG["batch_loans"][index :: self.users] or [0]
        self.size = min(CONFIG["batch_size"], len(loans))
        self.loans = itertools.cycle(loans)

    @task
    def post_batch(self):
        name = f"POST {BATCH}"
        items = [_payment(next(self.loans), "b") for _ in range(self.size)]
        response = self.request(
            "POST", BATCH, json={"payments": items}, headers=_headers(idempotent=True), name=name
        )
        if response is None:
            return
        with response:
            body = None
            if response.status_code in (200, 201, 207):
                try:
                    body = response.json()
                except ValueError:
                    body = None
            accepted, rejected = batch_outcome(body, len(items))
            BATCHES.append((time.time(), accepted, rejected))
            if body is None:
                response.failure(_failure(response, name))
            elif rejected:
                results = body.get("results") if isinstance(body.get("results"), list) else []
                first = next(
                    (r for r in results if isinstance(r, dict) and r.get("status") == "rejected"), None
                )
                FAILURES[f"{name}: {rejected} of {len(items)} items rejected, e.g. {str(first)[:300]}"] += 1


class CaseListUser(ApiUser):
    """GET /api/v1/cases/ with the next filter mix (the first page of 50)."""

    wait_time = poisson_throughput(1)

    @task
    def list_cases(self):
        query = next(_case_queries)
        name = f"GET {CASES} [{query['name']}]"
        path = CASES + ("?" + urlencode(query["params"]) if query["params"] else "")
        response = self.request("GET", path, headers=_headers(), name=name)
        if response is None:
            return
        with response:
            if response.status_code != 200:
                response.failure(_failure(response, name))


SCENARIOS = {"single": SinglePaymentUser, "batch": BatchUser, "cases": CaseListUser}


def _on_request(request_type, name, response_time, response_length, exception=None, **kwargs):
    SAMPLES.append((time.time(), name, float(response_time), exception is None))


def percentile(sorted_values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..1) of an ascending list."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(q * len(sorted_values)) - 1)]


def latency(values: list[float]) -> dict:
    values = sorted(values)
    return {
        "n": len(values),
        "p50": percentile(values, 0.50),
        "p95": percentile(values, 0.95),
        "p99": percentile(values, 0.99),
        "max": values[-1] if values else None,
        "mean": sum(values) / len(values) if values else None,
    }


def run(
    scenario: str, seconds: float, warmup: float, users: int, rate: float | None, drain: float = 300
) -> dict:
    """Run one scenario headless; the figures of the requests that ended in the measured window.

    After the window, no new requests; the ones in flight are waited for (up to ``drain`` seconds).
    """
    user_class = SCENARIOS[scenario]
    if rate and scenario != "batch":
        user_class.wait_time = poisson_throughput(rate / users)
    if scenario == "batch":
        BatchUser.users = users
    env = Environment(user_classes=[user_class], host=CONFIG["host"], events=events)
    env.events.request.add_listener(_on_request)
    runner = env.create_local_runner()
    runner.start(users, spawn_rate=users)  # the users start spread over one second
    gevent.sleep(warmup)
    env.stats.reset_all()
    FAILURES.clear()  # examples from the window only
    cpu_before = resource.getrusage(resource.RUSAGE_SELF)
    opened = time.time()
    gevent.sleep(seconds)
    closed = time.time()
    cpu_after = resource.getrusage(resource.RUSAGE_SELF)
    samples = [s for s in SAMPLES if opened <= s[0] < closed]
    batches = [b for b in BATCHES if opened <= b[0] < closed]
    failures = dict(FAILURES)
    STOPPING[0] = True
    drain_deadline = time.monotonic() + drain
    while IN_FLIGHT[0] and time.monotonic() < drain_deadline:
        gevent.sleep(0.1)
    drained = IN_FLIGHT[0] == 0
    runner.quit()

    window = closed - opened
    by_name: dict[str, list[float]] = defaultdict(list)
    for _ended, name, ms, _ok in samples:
        by_name[name].append(ms)
    cpu = (cpu_after.ru_utime + cpu_after.ru_stime) - (cpu_before.ru_utime + cpu_before.ru_stime)
    result = {
        "scenario": scenario,
        "users": users,
        "offered_rate": rate,
        "window_seconds": window,
        "warmup_seconds": warmup,
        "requests": len(samples),
        "errors": sum(1 for s in samples if not s[3]),
        "throughput": len(samples) / window if window else 0.0,
        "latency_ms": latency([s[2] for s in samples]),
        "by_name": {name: latency(values) for name, values in sorted(by_name.items())},
        "failure_examples": sorted(failures.items(), key=lambda item: -item[1])[:5],
        "load_generator_cpu": cpu / window if window else 0.0,
        "drained": drained,
    }
    if scenario == "batch":
        accepted = sum(b[1] for b in batches)
        result.update(
            batches=len(batches),
            accepted=accepted,
            rejected=sum(b[2] for b in batches),
            payments_per_second=accepted / window if window else 0.0,
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), required=True)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--users", type=int, default=1)
    parser.add_argument("--rate", type=float, default=None, help="requests per second, all users together")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    with open(args.config) as f:
        configure(json.load(f))
    result = run(args.scenario, args.seconds, args.warmup, args.users, args.rate)
    with open(args.out, "w") as f:
        json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()

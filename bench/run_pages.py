"""Pages patients hit, under load from wrk, against two same-run baselines.

gunicorn serves bench.settings (production settings on plain http) from the
bench PostgreSQL database with a Redis broker of its own; wrk, another
process, drives each page for BENCH_SECONDS (default 20 s) in all, after a
short warm-up, in interleaved rounds (BENCH_ROUNDS, default 4): every round
measures each page once, each page between two runs of the one-query
baseline, so a slow minute on this shared machine hits a page and its
baseline alike. A page's ratio is the median over the rounds of its
throughput divided by the mean of the two baseline runs around it; its CPU
cost (gunicorn's and PostgreSQL's CPU time per request) is the steadier
figure when the machine is busy. Query counts come from Django's test client
in this process, for a patient with 10 days of history and one with 90.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, urlsplit

from bench import lib

LUA = lib.REPO / "bench" / "wrk" / "pages.lua"
PAGE_PATIENTS = lib.env_int("BENCH_PAGE_PATIENTS", 200)
WARMUP_SECONDS = 3
# What "good" looks like (issue 7).
MIN_RATIO = 0.60
MAX_QUERIES = 6
MAX_PAGE_BYTES = 60 * 1024


@dataclass(frozen=True)
class Page:
    key: str
    label: str
    path: str
    mode: str = "get"  # get | log
    signed_in: bool = False
    min_bytes: int = 0  # a response smaller than this on average was not the page


BASELINE = "one_query"  # what every ratio is taken against
PAGES = [
    Page("constant", "constant (base)", "/bench/baseline/constant/"),
    Page("one_query", "one-query (base)", "/bench/baseline/one-query/"),
    Page("today", "today", "/today/", signed_in=True, min_bytes=3000),
    Page("log_post", "log POST", "/log/", mode="log", signed_in=True),
    Page("signin", "sign-in page", "/signin/", min_bytes=2000),
]


# --- HTTP helpers (one request, one fresh connection, nothing followed) -------------------


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    header_bytes: int

    def header(self, name: str) -> str:
        return next((v for k, v in self.headers if k.lower() == name.lower()), "")

    def cookies(self) -> dict[str, str]:
        found = {}
        for key, value in self.headers:
            if key.lower() == "set-cookie":
                name, _, rest = value.partition("=")
                found[name.strip()] = rest.split(";", 1)[0]
        return found

    @property
    def transferred(self) -> int:
        return self.header_bytes + len(self.body)


def fetch(
    port: int,
    method: str,
    path: str,
    *,
    cookies: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: str | None = None,
) -> Response:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        sent = {"Host": "127.0.0.1", **(headers or {})}
        if cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        if body is not None:
            sent["Content-Type"] = "application/x-www-form-urlencoded"
        conn.request(method, path, body=body, headers=sent)
        response = conn.getresponse()
        raw_headers = response.getheaders()
        payload = response.read()
        header_bytes = (
            len(f"HTTP/1.1 {response.status} {response.reason}\r\n")
            + sum(len(f"{k}: {v}\r\n") for k, v in raw_headers)
            + 2
        )
        return Response(response.status, raw_headers, payload, header_bytes)
    finally:
        conn.close()


# --- signing the bench patients in, the way a patient does --------------------------------


def sign_in(port: int, user) -> dict[str, str]:
    """Open an emailed sign-in link and press the button; return the session's cookies."""
    from patients.services import login_link_create

    token = login_link_create(user=user).token
    path = f"/signin/link/{token}/"
    page = fetch(port, "GET", path)
    if page.status != 200:
        raise RuntimeError(f"Sign-in link page answered {page.status}.")
    cookies = page.cookies()
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page.body)
    if match is None or "csrftoken" not in cookies:
        raise RuntimeError("No CSRF token on the sign-in link page.")
    done = fetch(
        port,
        "POST",
        path,
        cookies=cookies,
        body=f"csrfmiddlewaretoken={match.group(1).decode()}",
    )
    if done.status != 302 or urlsplit(done.header("Location")).path != "/today/":
        raise RuntimeError(f"Signing in answered {done.status} {done.header('Location')!r}.")
    cookies.update(done.cookies())  # the session, and the CSRF token rotated at sign-in
    if "sessionid" not in cookies:
        raise RuntimeError("Signing in set no session cookie.")
    return {"sessionid": cookies["sessionid"], "csrftoken": cookies["csrftoken"]}


def log_form_zone(status: int, body: bytes) -> str:
    """The zone the log form page carries (posted back with each tap)."""
    match = re.search(rb'name="zone" value="([^"]+)"', body)
    if status != 200 or match is None:
        raise RuntimeError(f"The log form answered {status}, without its zone.")
    return match.group(1).decode()


# --- query counts, in process -------------------------------------------------------------


TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE SAVEPOINT")


def query_counts(short, long) -> dict:
    """Queries per request for a patient with a short and one with a long history.

    A query is an SQL statement that reads or writes rows; BEGIN/COMMIT (which
    Django 6 records too) are counted apart, under ``transaction_statements``.
    """
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    control: dict[str, int] = {}

    def count(client: Client, method: str, path: str, data: dict | None = None, status=None):
        with CaptureQueriesContext(connection) as captured:
            response = getattr(client, method)(path, data or {})
        if status is not None and response.status_code != status:
            raise RuntimeError(f"{method.upper()} {path} answered {response.status_code}.")
        statements = [query["sql"].lstrip().upper() for query in captured.captured_queries]
        transaction = sum(sql.startswith(TRANSACTION_CONTROL) for sql in statements)
        control[f"{method} {path}"] = transaction
        return len(statements) - transaction

    results: dict[str, dict] = {}
    anonymous = Client(SERVER_NAME="127.0.0.1")
    for page in PAGES:
        if not page.signed_in:
            count(anonymous, "get", page.path)  # warm
            results[page.key] = {"anonymous": count(anonymous, "get", page.path, status=200)}
    for label, subject in (("short", short), ("long", long)):
        client = Client(SERVER_NAME="127.0.0.1")
        client.force_login(subject.user)
        client.get("/today/")  # warm: the session row exists and is renewed from now on
        # The log form as the page renders it, with a fresh key each time.
        page = client.get("/log/")
        form = {"source": "app", "zone": log_form_zone(page.status_code, page.content)}
        client.post("/log/", {**form, "idempotency_key": str(uuid.uuid4())})
        results.setdefault("today", {})[label] = count(client, "get", "/today/", status=200)
        form["idempotency_key"] = str(uuid.uuid4())
        results.setdefault("log_post", {})[label] = count(client, "post", "/log/", form, status=302)
        results.setdefault("log_post_replay", {})[label] = count(
            client, "post", "/log/", form, status=302
        )
    results["history_days"] = {"short": short.history_days, "long": long.history_days}
    results["transaction_statements"] = control
    return results


def queries_text(counts: dict, key: str) -> str:
    entry = counts.get(key, {})
    if "anonymous" in entry:
        return f"queries {entry['anonymous']}"
    days = counts["history_days"]
    text = f"queries {entry['short']}/{entry['long']} ({days['short']}d/{days['long']}d)"
    replay = counts.get(f"{key}_replay")
    if replay:
        text += f", replay {replay['short']}/{replay['long']}"
    return text


# --- page weight ------------------------------------------------------------------------


class Subresources(HTMLParser):
    """Everything a page asks the browser to load: stylesheets, icons, manifest, scripts, images."""

    def __init__(self):
        super().__init__()
        self.urls: list[tuple[str, str]] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "link" and attrs.get("href"):
            self.urls.append((f"link rel={attrs.get('rel', '')}", attrs["href"]))
        elif tag in ("script", "img") and attrs.get("src"):
            self.urls.append((tag, attrs["src"]))


def page_weight(port: int, cookies: dict[str, str]) -> dict:
    """Bytes received for /today/ and everything it loads, asking for gzip."""
    accept = {"Accept-Encoding": "gzip"}
    page = fetch(port, "GET", "/today/", cookies=cookies, headers=accept)
    if page.status != 200:
        raise RuntimeError(f"/today/ answered {page.status}.")
    html = gzip.decompress(page.body) if page.header("Content-Encoding") == "gzip" else page.body
    parser = Subresources()
    parser.feed(html.decode())
    items = [
        {
            "url": "/today/",
            "kind": "html",
            "bytes": page.transferred,
            "encoding": page.header("Content-Encoding") or "identity",
            "body_bytes": len(page.body),
            "gzip_would_be": len(gzip.compress(html, 6)),
        }
    ]
    seen = set()
    for kind, url in parser.urls:
        path = urlsplit(url).path
        if path in seen:
            continue
        seen.add(path)
        response = fetch(port, "GET", path, cookies=cookies, headers=accept)
        if response.status != 200:
            raise RuntimeError(f"{path} (from /today/) answered {response.status}.")
        items.append(
            {
                "url": path,
                "kind": kind,
                "bytes": response.transferred,
                "encoding": response.header("Content-Encoding") or "identity",
                "body_bytes": len(response.body),
            }
        )
    return {"total_bytes": sum(item["bytes"] for item in items), "requests": items}


# --- wrk ----------------------------------------------------------------------------------


def wrk(port: int, page: Page, seconds: int, connections: int, sessions_file: Path) -> dict:
    args = [page.mode, str(sessions_file) if page.signed_in else "-", "0.1"]
    command = [
        "wrk",
        "--threads", "1",
        "--connections", str(connections),
        "--duration", f"{seconds}s",
        "--timeout", "10s",
        "--script", str(LUA),
        f"http://127.0.0.1:{port}{page.path}",
        "--", *args,
    ]  # fmt: skip
    done = subprocess.run(  # noqa: S603 (our own command line)
        command, capture_output=True, text=True, timeout=seconds + 60
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCHJSON "):
            return json.loads(line.removeprefix("BENCHJSON "))
    raise RuntimeError(f"wrk gave no result for {page.path}:\n{done.stdout}\n{done.stderr}")


def check(page: Page, result: dict, connections: int) -> None:
    """A fast wrong answer is not a result: make sure the page was really served."""
    errors = result["errors"]
    if result["requests"] == 0 or errors["status"] or errors["timeout"]:
        raise RuntimeError(f"{page.label}: {result['requests']} requests, errors {errors}.")
    if page.min_bytes and result["bytes"] / result["requests"] < page.min_bytes:
        raise RuntimeError(
            f"{page.label}: responses averaged {result['bytes'] / result['requests']:.0f} bytes; "
            "that is not the page (signed out, redirected?)."
        )


def measure(
    port: int, page: Page, seconds: int, connections: int, sessions_file: Path, server: int
) -> dict:
    """One wrk run on one page; ``server`` is gunicorn's process group.

    Besides what wrk saw, the CPU time gunicorn and PostgreSQL spent per
    request: what the page costs, however busy the machine was.
    """
    from symptoms.models import SessionLog

    time.sleep(0.5)  # requests in flight when the last run stopped land first
    before = SessionLog.objects.count()
    cpu_before = lib.server_cpu(server)
    wal_before = lib.wal_position()
    result = wrk(port, page, seconds, connections, sessions_file)
    app_cpu, db_cpu = lib.server_cpu_since(server, cpu_before)
    result["wal_bytes"] = lib.wal_position() - wal_before
    check(page, result, connections)
    result["rps"] = result["requests"] / (result["duration_us"] / 1e6)
    result["app_cpu_seconds"] = app_cpu
    result["db_cpu_seconds"] = db_cpu
    if page.mode == "log":
        # Every fresh key made exactly one session, and no replay made one.
        # A request made just as wrk stopped may never have been sent.
        time.sleep(0.5)
        created = SessionLog.objects.count() - before
        result["sessions_created"] = created
        if not result["fresh_keys"] - connections <= created <= result["fresh_keys"]:
            raise RuntimeError(
                f"log POST: {created} sessions created for {result['fresh_keys']} fresh keys "
                f"and {result['replayed_keys']} replays."
            )
    return result


def combine(runs: list[dict], base_rps: list[float]) -> dict:
    """One page's rounds: throughput and CPU over all of them; latency and the ratio
    to the baseline as the median of the rounds (each run against the baseline's
    throughput beside it, ``base_rps``)."""
    requests = sum(run["requests"] for run in runs)
    cpu = sum(run["app_cpu_seconds"] + run["db_cpu_seconds"] for run in runs)
    combined = {
        "rounds": runs,
        "requests": requests,
        "rps": requests / (sum(run["duration_us"] for run in runs) / 1e6),
        "p50_us": statistics.median(run["p50_us"] for run in runs),
        "p99_us": statistics.median(run["p99_us"] for run in runs),
        "ratio": statistics.median(
            run["rps"] / base for run, base in zip(runs, base_rps, strict=True)
        ),
        "cpu_ms_per_request": 1000 * cpu / requests,
        "app_cpu_ms_per_request": 1000 * sum(r["app_cpu_seconds"] for r in runs) / requests,
        "db_cpu_ms_per_request": 1000 * sum(r["db_cpu_seconds"] for r in runs) / requests,
        "wal_bytes_per_request": sum(run["wal_bytes"] for run in runs) / requests,
    }
    for key in ("fresh_keys", "replayed_keys", "sessions_created"):
        if key in runs[0]:
            combined[key] = sum(run[key] for run in runs)
    return combined


# --- gunicorn -----------------------------------------------------------------------------


def start_gunicorn(port: int, env: dict[str, str], workdir: Path, workers: int) -> lib.Process:
    command = [
        sys.executable, "-m", "gunicorn", "config.wsgi:application",
        "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers),
        "--worker-class", "sync",
        "--graceful-timeout", "5",
        "--log-level", "warning",
    ]  # fmt: skip
    process = lib.Process("gunicorn", command, env=env, logfile=workdir / "gunicorn.log").start()

    def serving() -> bool:
        if not process.alive():
            raise RuntimeError(f"gunicorn exited at start:\n{process.log_tail()}")
        if not lib.port_open(port):
            return False
        return fetch(port, "GET", "/healthz").status == 200

    lib.wait_until(serving, timeout=60, what="gunicorn to answer /healthz")
    return process


def line(label: str, result: dict, base: dict, queries: str) -> str:
    cpu = result["cpu_ms_per_request"]
    return (
        f"{label:<18} {result['rps']:8.1f} req/s  p50 {result['p50_us'] / 1000:6.1f} ms  "
        f"p99 {result['p99_us'] / 1000:6.1f} ms  {result['ratio']:5.2f}x  "
        f"cpu {cpu:5.2f} ms {lib.ratio(base['cpu_ms_per_request'], cpu):>6}  {queries}"
    )


def run(report: lib.Report, workdir: Path) -> dict:
    from django.core.management import call_command

    from reminders.tests.live import RedisServer

    seconds = lib.bench_seconds()
    rounds = max(1, min(lib.env_int("BENCH_ROUNDS", 4), seconds // 2))
    per_round = seconds // rounds
    cpus = os.cpu_count() or 2
    workers = lib.env_int("BENCH_GUNICORN_WORKERS", 2 * cpus)
    connections = lib.env_int("BENCH_CONNECTIONS", 2 * workers)
    report.line(
        f"== pages: gunicorn {workers} sync workers, wrk 1 thread {connections} connections, "
        f"{rounds * per_round} s each ({rounds} rounds of {per_round} s)"
    )

    with lib.step("database"):
        lib.fresh_schema()
    if not Path(os.environ["STATIC_ROOT"], "staticfiles.json").exists():
        with lib.step("collectstatic (compressed, manifest)"):
            call_command("collectstatic", interactive=False, verbosity=0)
    _therapist, patients = data_for_pages()
    short, long = patients[0], patients[1]
    with lib.step("query counts (test client)"):
        counts = query_counts(short, long)
    lib.analyze()

    redis = RedisServer(workdir / "redis-pages")
    gunicorn: lib.Process | None = None
    port = lib.free_port()
    try:
        redis.start()
        env = {**os.environ, "CELERY_BROKER_URL": redis.url, "REDIS_URL": redis.url}
        with lib.step(f"gunicorn on 127.0.0.1:{port}"):
            gunicorn = start_gunicorn(port, env, workdir, workers)
        sessions_file = workdir / "sessions.txt"
        bar = lib.Progress("signing in", len(patients))
        lines = []
        for subject in patients:
            cookies = sign_in(port, subject.user)
            page = fetch(port, "GET", "/log/", cookies=cookies)
            zone = quote(log_form_zone(page.status, page.body), safe="")
            lines.append(f"{cookies['sessionid']} {cookies['csrftoken']} {zone}\n")
            bar.update(1)
        bar.close()
        sessions_file.write_text("".join(lines))
        first = dict(zip(("sessionid", "csrftoken"), lines[0].split()[:2], strict=True))
        weight = page_weight(port, first)

        with lib.step(f"warm-up: wrk {WARMUP_SECONDS} s on each page"):
            for page in PAGES:
                wrk(port, page, WARMUP_SECONDS, connections, sessions_file)
        # Interleaved rounds, and in each round every page between two runs of
        # the baseline: a slow minute on this shared machine hits a page and
        # the baseline it is compared with alike.
        runs: dict[str, list[dict]] = {page.key: [] for page in PAGES}
        beside: dict[str, list[float]] = {page.key: [] for page in PAGES}
        baseline = next(page for page in PAGES if page.key == BASELINE)

        def run_one(page: Page) -> dict:
            result = measure(port, page, per_round, connections, sessions_file, gunicorn.popen.pid)
            runs[page.key].append(result)
            return result

        for number in range(1, rounds + 1):
            with lib.step(f"round {number}/{rounds}: wrk {per_round} s on each page"):
                before = run_one(baseline)
                for page in PAGES:
                    if page is baseline:
                        continue
                    run_one(page)
                    after = run_one(baseline)
                    beside[page.key].append((before["rps"] + after["rps"]) / 2)
                    before = after
        beside[BASELINE] = [run["rps"] for run in runs[BASELINE]]
    finally:
        if gunicorn is not None:
            gunicorn.stop()
        redis.stop()

    results = {key: combine(page_runs, beside[key]) for key, page_runs in runs.items()}
    base = results[BASELINE]
    base_runs = [run["rps"] for run in runs[BASELINE]]
    spread = (max(base_runs) - min(base_runs)) / statistics.median(base_runs)

    report.line(
        f"{'page':<18} {'throughput':>14}  {'latency':>10}  {'':>12}  {'ratio':>6}  "
        f"{'cost/request':>17}  (ratios: against the one-query baseline)"
    )
    for page in PAGES:
        report.line(line(page.label, results[page.key], base, queries_text(counts, page.key)))
    control = counts["transaction_statements"]
    report.line(
        f"{'':<18} one-query baseline, {len(base_runs)} runs (one before and after each "
        f"page): {', '.join(f'{rps:.0f}' for rps in base_runs)} req/s "
        f"(spread {100 * spread:.0f}%)"
    )
    report.line(
        f"{'':<18} cpu: gunicorn + PostgreSQL CPU time per request; queries: SQL per request "
        f"(test client), BEGIN/COMMIT not counted (today +{control['get /today/']}, "
        f"log POST +{control['post /log/']})"
    )
    report.line(
        f"{'':<18} WAL (PostgreSQL's write-ahead log, everything the server wrote) per log "
        f"POST: {results['log_post']['wal_bytes_per_request']:,.0f} B"
    )
    html = weight["requests"][0]
    report.line(
        f"page weight        today {weight['total_bytes'] / 1024:.1f} KB in "
        f"{len(weight['requests'])} requests (gzip asked; HTML {html['bytes'] / 1024:.1f} KB "
        f"{html['encoding']}, {html['gzip_would_be'] / 1024:.1f} KB if gzipped)"
    )
    for item in weight["requests"]:
        report.line(f"{'':<20}{item['bytes']:>7,} B  {item['encoding']:<8}  {item['url']}")

    targets = []
    for key in ("today", "log_post"):
        value = results[key]["ratio"]
        targets.append(
            {
                "target": f"{key} throughput >= {MIN_RATIO:.2f}x one-query baseline",
                "value": f"{value:.2f}x",
                "met": value >= MIN_RATIO,
            }
        )
        short_q, long_q = counts[key]["short"], counts[key]["long"]
        targets.append(
            {
                "target": f"{key} queries <= {MAX_QUERIES}, same for 10 and 90 days of history",
                "value": f"{short_q}/{long_q}",
                "met": short_q == long_q and long_q <= MAX_QUERIES,
            }
        )
    targets.append(
        {
            "target": f"today page weight < {MAX_PAGE_BYTES // 1024} KB",
            "value": f"{weight['total_bytes'] / 1024:.1f} KB",
            "met": weight["total_bytes"] < MAX_PAGE_BYTES,
        }
    )
    return {
        "config": {
            "seconds": rounds * per_round,
            "rounds": rounds,
            "round_seconds": per_round,
            "warmup_seconds": WARMUP_SECONDS,
            "gunicorn": f"{workers} sync workers",
            "wrk": f"1 thread, {connections} connections",
            "page_patients": len(patients),
            "log_replay_fraction": 0.1,
        },
        "baseline_rps": base["rps"],
        "baseline_rps_by_run": base_runs,
        "baseline_spread": spread,
        "results": results,
        "queries": counts,
        "page_weight": weight,
        "targets": targets,
    }


def data_for_pages():
    from bench import data

    return data.page_patients(PAGE_PATIENTS)


if __name__ == "__main__":
    from bench.__main__ import main

    raise SystemExit(main(["pages"]))

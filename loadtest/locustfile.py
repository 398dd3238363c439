"""Simulated patients: sign in with their emailed link, open today, log a session with pain.

Run by loadtest/run.sh (``make loadtest``), headless. Every response is
checked for the exact status and redirect a phone would get; anything else
is a failure, and any failure fails the run. The number of sessions logged
is written out so run.sh can compare it with the rows in the database.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading

from locust import HttpUser, between, events, task

TOKENS = iter(json.loads(open(os.environ["LOADTEST_TOKENS"]).read()))  # noqa: SIM115
TOKENS_LOCK = threading.Lock()
LOGGED: set[str] = set()
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')
ZONE = re.compile(r'name="zone" value="([^"]+)"')
PAIN_URL = re.compile(r"^/log/[0-9a-f-]{36}/pain/$")
RESULT_URL = re.compile(r"^/log/[0-9a-f-]{36}/$")
WAIT = [float(x) for x in os.environ.get("LOADTEST_WAIT", "0.5-1.5").split("-")]
# Pain mostly in the low back: no urgent alerts (their emails would need a worker).
SCORES = itertools.cycle(["2", "3", "4", "5", "3", "2"])


def field(pattern: re.Pattern, text: str) -> str:
    match = pattern.search(text)
    if match is None:
        raise AssertionError(f"no {pattern.pattern!r} in the page")
    return match.group(1)


class Patient(HttpUser):
    wait_time = between(*WAIT)

    def expect(self, response, status: int, location: re.Pattern | str | None = None) -> bool:
        if response.status_code == 0:  # no answer: the connection failed
            response.failure(f"no response: {response.error!r}")
            return False
        if response.status_code != status:
            response.failure(f"status {response.status_code}, expected {status}")
            return False
        if location is not None:
            where = response.headers.get("Location", "")
            ok = location.match(where) if isinstance(location, re.Pattern) else where == location
            if not ok:
                response.failure(f"redirected to {where!r}")
                return False
        response.success()
        return True

    def on_start(self) -> None:
        with TOKENS_LOCK:
            token = next(TOKENS)
        url = f"/signin/link/{token}/"
        with self.client.get(url, name="/signin/link/[token]/", catch_response=True) as page:
            if not self.expect(page, 200):
                raise RuntimeError("sign-in page failed")
        with self.client.post(
            url,
            {"csrfmiddlewaretoken": field(CSRF, page.text)},
            name="/signin/link/[token]/ POST",
            allow_redirects=False,
            catch_response=True,
        ) as response:
            if not self.expect(response, 302, "/today/"):
                raise RuntimeError("sign-in failed")

    @task
    def do_a_session(self) -> None:
        with self.client.get("/today/", catch_response=True) as today:
            if not self.expect(today, 200):
                return
        with self.client.get("/log/", catch_response=True) as form:
            if not self.expect(form, 200):
                return
        data = {
            "csrfmiddlewaretoken": field(CSRF, form.text),
            "idempotency_key": field(KEY, form.text),
            "source": "app",
            "zone": field(ZONE, form.text),  # the form as a browser sends it
        }
        with self.client.post(
            "/log/", data, name="/log/ POST", allow_redirects=False, catch_response=True
        ) as logged:
            if not self.expect(logged, 302, PAIN_URL):
                return
        pain_url = logged.headers["Location"]
        LOGGED.add(pain_url)
        with self.client.get(pain_url, name="/log/[id]/pain/", catch_response=True) as pain:
            if not self.expect(pain, 200):
                return
        with self.client.post(
            pain_url,
            {
                "csrfmiddlewaretoken": field(CSRF, pain.text),
                "score": next(SCORES),
                "location": "back_centre",
                "note": "",
            },
            name="/log/[id]/pain/ POST",
            allow_redirects=False,
            catch_response=True,
        ) as saved:
            if not self.expect(saved, 302, RESULT_URL):
                return
        with self.client.get(
            saved.headers["Location"], name="/log/[id]/", catch_response=True
        ) as result:
            self.expect(result, 200)


@events.quitting.add_listener
def write_count(environment, **kwargs) -> None:
    path = os.environ.get("LOADTEST_COUNT_FILE")
    if path:
        with open(path, "w") as handle:
            json.dump({"sessions_logged": len(LOGGED)}, handle)

"""Summarise a locust run and check it against the database.

    python -m loadtest.report <csv prefix> <count file>

Prints throughput, p50/p95/p99 and errors (overall and per request), then
checks that the number of session rows in the database equals the number of
sessions the simulated patients logged. Exit status 1 on any error or
mismatch.
"""

from __future__ import annotations

import csv
import json
import sys

import django


def main() -> int:
    prefix, count_file = sys.argv[1], sys.argv[2]
    with open(f"{prefix}_stats.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    total = next(row for row in rows if row["Name"] == "Aggregated")
    requests = int(total["Request Count"])
    failures = int(total["Failure Count"])
    print()
    print("== Load test summary")
    print(f"{'request':34} {'count':>7} {'fail':>5} {'p50':>6} {'p95':>6} {'p99':>6} {'req/s':>7}")
    for row in rows:
        name = row["Name"] if row["Name"] != "Aggregated" else "ALL"
        label = f"{row['Type']} {name}".strip() if name != "ALL" else "ALL"
        print(
            f"{label[:34]:34} {row['Request Count']:>7} {row['Failure Count']:>5} "
            f"{row['50%']:>6} {row['95%']:>6} {row['99%']:>6} {float(row['Requests/s']):>7.1f}"
        )
    print(
        f"throughput {float(total['Requests/s']):.1f} requests/s; latency ms "
        f"p50 {total['50%']}, p95 {total['95%']}, p99 {total['99%']}; "
        f"{requests} requests, {failures} errors"
    )

    django.setup()
    from symptoms.models import PainReport, SessionLog

    with open(count_file) as handle:
        logged = json.load(handle)["sessions_logged"]
    in_db = SessionLog.objects.count()
    pain = PainReport.objects.count()
    print(f"sessions logged by the patients: {logged}; session rows in the database: {in_db}")
    print(f"pain reports in the database: {pain}")
    problems = []
    if requests == 0:
        problems.append("no requests were made")
    if failures:
        problems.append(f"{failures} requests failed")
    if in_db != logged:
        problems.append(f"{logged} sessions logged but {in_db} in the database")
    for problem in problems:
        print(f"FAILED: {problem}")
    if not problems:
        print("OK: zero errors, every logged session is in the database")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

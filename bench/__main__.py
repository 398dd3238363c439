"""Run the benchmarks: ``python -m bench [pages] [reminders]`` (both by default).

``make bench`` / ``make bench-pages`` / ``make bench-reminders`` call this.
BENCH_SECONDS (default 20) sets how long each load measurement runs.

Everything runs on 127.0.0.1 against a PostgreSQL database of its own
(``homeexercise_bench``, dropped and created here, dropped again at the end
unless BENCH_KEEP_DB=1; BENCH_KEEP_WORKDIR=1 keeps the process logs) and
redis-servers started on free ports. Every
process started here is stopped here, whatever happens. One line per
measurement is printed; the same goes to bench/results/<time>.json and
bench/results/latest.json.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import lib

SECTIONS = ("pages", "reminders")


def configure(workdir: Path) -> None:
    """The environment bench.settings reads; nothing from the caller's shell leaks in."""
    for name in list(os.environ):
        if name.startswith(("EMAIL_", "CELERY_", "REMINDER_")) or name in {
            "DATABASE_URL",
            "REDIS_URL",
            "STATIC_ROOT",
            "VAR_DIR",
            "DEBUG",
        }:
            del os.environ[name]
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "bench.settings",
            "DATABASE_URL": lib.database_url(),
            "STATIC_ROOT": str(workdir / "static"),
            "VAR_DIR": str(workdir / "var"),
            "SITE_URL": "http://127.0.0.1:8000",
            "PYTHONPATH": str(lib.REPO),
        }
    )


def main(argv: list[str] | None = None) -> int:
    sections = list(argv if argv is not None else sys.argv[1:]) or list(SECTIONS)
    unknown = [name for name in sections if name not in SECTIONS]
    if unknown:
        print(f"usage: python -m bench [{' | '.join(SECTIONS)}] ...", file=sys.stderr)
        return 2
    if shutil.which("wrk") is None and "pages" in sections:
        print("wrk is not installed (apt-get install wrk, or `make bench`).", file=sys.stderr)
        return 2

    workdir = Path(tempfile.mkdtemp(prefix="homeexercise-bench-"))
    configure(workdir)
    import django

    django.setup()

    report = lib.Report()
    report.data.update(
        started_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        command=f"make bench (python -m bench {' '.join(sections)})",
        bench_seconds=lib.bench_seconds(),
        machine=lib.machine(),
    )
    m = report.data["machine"]
    load_start = os.getloadavg()[0]
    report.line(
        f"machine: {m['cpus']} CPUs ({m['cpu_model']}), {m['memory']}, Python {m['python']}, "
        f"Django {m['django']}, {m['postgresql']}; load average {load_start:.1f}"
    )
    started = time.perf_counter()
    try:
        for section in sections:
            if section == "pages":
                from bench import run_pages

                report.data["pages"] = run_pages.run(report, workdir)
            else:
                from bench import run_reminders

                report.data["reminders"] = run_reminders.run(report, workdir)
    finally:
        if os.environ.get("BENCH_KEEP_DB") != "1":
            lib.drop_database()
        if os.environ.get("BENCH_KEEP_WORKDIR") == "1":
            print(f"logs kept in {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)

    load_end = os.getloadavg()[0]
    report.data["load_average"] = {"start": load_start, "end": load_end}
    report.line(f"load average (1 min): {load_start:.1f} at the start, {load_end:.1f} at the end")
    report.line("== targets")
    targets = [t for s in sections for t in report.data[s]["targets"]]
    for target in targets:
        verdict = "met   " if target["met"] else "MISSED"
        report.line(f"{verdict}  {target['target']}: {target['value']}")
    report.data["targets"] = targets
    report.data["total_seconds"] = time.perf_counter() - started
    path = lib.save(report)
    print(f"results: {path.relative_to(lib.REPO)} (and bench/results/latest.json)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

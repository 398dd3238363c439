"""A local SMTP sink (aiosmtpd) in its own process, and a client that blasts it.

    python -m bench.smtp_sink --port 2525 --record /tmp/ids.txt

accepts every message and appends its Message-ID (one line each) to the
record file, so the bench can check that every reminder arrived exactly once.
It stops on SIGTERM. No Django here: the sink must not share a process (or a
GIL) with what it measures.

``blast()`` measures the sink's own acceptance rate: several processes of
client threads sending the same message over and over, ``per_connection``
messages on each connection (connect, EHLO, then MAIL, RCPT, DATA for each
message, QUIT), as the reminder workers send a batch of reminders.
"""

from __future__ import annotations

import argparse
import multiprocessing
import re
import signal
import smtplib
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from aiosmtpd.controller import Controller

MESSAGE_ID = re.compile(rb"^Message-ID:[ \t]*(\S+)", re.IGNORECASE | re.MULTILINE)


class RecordingHandler:
    def __init__(self, record: Path):
        self.file = record.open("ab", buffering=0)
        self.accepted = 0

    async def handle_DATA(self, server, session, envelope):
        content = envelope.original_content or envelope.content
        head = content.split(b"\r\n\r\n", 1)[0]
        match = MESSAGE_ID.search(head)
        self.file.write((match.group(1) if match else b"-") + b"\n")
        self.accepted += 1
        return "250 2.0.0 Message accepted"


def serve(port: int, record: Path) -> None:
    handler = RecordingHandler(record)
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    print(f"SMTP sink on 127.0.0.1:{port}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        controller.stop()
        handler.file.close()
        print(f"SMTP sink accepted {handler.accepted} messages", flush=True)


# --- the sink's own acceptance rate --------------------------------------------------------


def _client_process(
    port: int, message: bytes, seconds: float, threads: int, per_connection: int = 1
) -> tuple[int, float, float]:
    """(messages sent, wall-clock start, wall-clock end) of one client process."""
    started = time.time()
    deadline = time.monotonic() + seconds
    counts = [0] * threads
    errors: list[str] = []

    def loop(index: int) -> None:
        try:
            while time.monotonic() < deadline:
                # local_hostname given, as Django's backend gives its cached FQDN.
                with smtplib.SMTP(
                    "127.0.0.1", port, local_hostname="localhost", timeout=30
                ) as smtp:
                    for _ in range(per_connection):
                        smtp.sendmail("bench@localhost", ["patient@bench.invalid"], message)
                        counts[index] += 1
                        if time.monotonic() >= deadline:
                            break
        except Exception as error:
            errors.append(f"{type(error).__name__}: {error}")

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise RuntimeError(f"SMTP client errors: {errors[:3]}")
    return sum(counts), started, time.time()


def blast(
    *,
    port: int,
    message: bytes,
    seconds: float,
    processes: int,
    threads: int,
    per_connection: int = 1,
) -> dict:
    """Send ``message`` as fast as ``processes`` x ``threads`` clients can, for ``seconds``."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        futures = [
            pool.submit(_client_process, port, message, seconds, threads, per_connection)
            for _ in range(processes)
        ]
        runs = [future.result() for future in futures]
    # From the first client's start to the last one's end (wall clock, shared).
    sent = sum(count for count, _start, _end in runs)
    elapsed = max(end for _c, _s, end in runs) - min(start for _c, start, _e in runs)
    return {
        "messages": sent,
        "seconds": elapsed,
        "rate": sent / elapsed,
        "clients": processes * threads,
        "messages_per_connection": per_connection,
        "message_bytes": len(message),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--record", type=Path, required=True)
    args = parser.parse_args()
    serve(args.port, args.record)


if __name__ == "__main__":
    main()

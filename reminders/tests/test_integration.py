"""Reminders end to end with real processes: Celery worker and beat, Redis, SMTP.

Each test starts what it needs (see the ``live`` fixture): a redis-server
without persistence, an aiosmtpd sink on 127.0.0.1, and ``celery -A config
worker`` / ``beat`` subprocesses using this test's database. Fault tests kill
the worker with SIGKILL, restart Redis, and race dispatchers.

The one window where a reminder can still go out twice (the mail server
accepted it, then the worker died before the row said "sent") is stated in
reminders/services.py and shown in test_dispatch.py; the faults here land
outside it, so every due reminder must arrive exactly once.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import zoneinfo

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.utils import timezone
from kombu import Connection

from reminders import services, tasks
from reminders.models import ReminderSlot
from reminders.tests.live import wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SPACING = 20  # minutes between a test patient's reminders


def zone_near_noon(now: dt.datetime) -> str:
    """A fixed-offset zone where it is about midday, so no window crosses midnight."""
    hours = 12 - now.hour
    if hours == 0:
        return "Etc/UTC"
    return f"Etc/GMT{'-' if hours > 0 else '+'}{abs(hours)}"  # POSIX signs are reversed


@pytest.fixture
def patient_with_due_slots(make_patient_on_program):
    """A patient whose first ``due`` reminders are due now and the rest still to come.

    Planned through the real services as if the plan had run a while ago (the
    test process's clock is moved back for that): reminders are 20 minutes
    apart, the last due one 10-15 minutes ago, the next one 5-10 minutes ahead.
    """

    def make(*, due: int, later: int, **kwargs):
        now = timezone.now()
        zone = zone_near_noon(now)
        local = now.astimezone(zoneinfo.ZoneInfo(zone))
        floor5 = local.replace(minute=local.minute - local.minute % 5, second=0, microsecond=0)
        wake = floor5 - dt.timedelta(minutes=SPACING * due)
        sleep = wake + dt.timedelta(minutes=SPACING * (due + later))
        count = due + later
        phase = {2: "maintenance", 3: "recovery", 4: "recovery", 5: "sub_acute"}.get(count, "acute")
        planned_at = now - dt.timedelta(minutes=SPACING * due + 10)
        with time_machine.travel(planned_at, tick=True):
            patient = make_patient_on_program(
                timezone=zone,
                wake=wake.time(),
                sleep=sleep.time(),
                phase=phase,
                sessions_per_day=count,
                **kwargs,
            )  # the schedule_changed receiver plans it on commit
        rows = list(ReminderSlot.objects.filter(patient=patient, local_date=local.date()))
        assert len(rows) == count, "planning did not create the day's slots"
        due_rows = [row for row in rows if row.due_at <= now]
        assert len(due_rows) == due
        return patient, sorted(due_rows, key=lambda row: row.due_at)

    return make


def message_id(row: ReminderSlot) -> str:
    from django.conf import settings

    return f"<reminder-{row.public_id}@{settings.REMINDER_MESSAGE_ID_DOMAIN}>"


def statuses(rows) -> list[str]:
    return list(
        ReminderSlot.objects.filter(pk__in=[row.pk for row in rows])
        .order_by("due_at")
        .values_list("status", flat=True)
    )


def all_settled(rows, status: str = "sent"):
    return lambda: set(statuses(rows)) == {status}


def assert_each_delivered_once(live, rows) -> None:
    ids = live.sink.message_ids()
    assert len(ids) == len(set(ids)), f"duplicates: {sorted(ids)}"
    assert set(ids) == {message_id(row) for row in rows}


def enqueue_to_broker(slot_ids, token) -> None:
    """What the dispatch task does with each claimed batch."""
    tasks.send_reminders.apply_async(args=[list(slot_ids), str(token)])


def test_beat_and_worker_deliver_exactly_the_due_reminders_once_each(live, patient_with_due_slots):
    patient, due = patient_with_due_slots(due=3, later=3, email="pat@patients.test")
    live.worker()
    live.beat()
    wait_for(all_settled(due), timeout=45, what=f"due slots sent\n{live.logs()}")
    # Beat keeps sweeping every second: nothing more may arrive.
    time.sleep(4)
    assert_each_delivered_once(live, due)
    later = ReminderSlot.objects.filter(
        patient=patient, local_date=due[0].local_date, due_at__gt=timezone.now()
    )
    assert later.count() == 3 and set(later.values_list("status", flat=True)) == {"planned"}

    by_id = {row.public_id: row for row in due}
    for item in live.sink.received:
        message = item.message
        assert item.rcpt == ["pat@patients.test"]
        row = next(r for r in by_id.values() if message_id(r) == message["Message-ID"])
        assert message["Subject"].startswith(f"Session {row.slot_number} of 6 today")
        assert message.get_content_type() == "multipart/alternative"
        text = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        assert f"session {row.slot_number} of 6 today" in text
        assert f"Session {row.slot_number} of 6 today" in html
        assert message["List-Unsubscribe"].startswith("<http")
        assert "/reminders/unsubscribe/" in message["List-Unsubscribe"]
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    for row in ReminderSlot.objects.filter(pk__in=[r.pk for r in due]):
        assert row.message_id == message_id(row) and row.sent_at is not None


def test_the_unsubscribe_post_stops_further_emails(live, patient_with_due_slots):
    patient, due = patient_with_due_slots(due=3, later=3)
    first, in_flight, waiting = due
    live.worker()
    # The first reminder goes out.
    token = services.reminder_claim(slot_id=first.pk)
    enqueue_to_broker([first.pk], token)
    wait_for(all_settled([first]), timeout=30, what=f"first reminder\n{live.logs()}")
    assert len(live.sink.received) == 1
    # A second one is claimed (its task not yet run) when the patient clicks.
    in_flight_token = services.reminder_claim(slot_id=in_flight.pk)

    header = live.sink.received[0].message["List-Unsubscribe"]
    from django.conf import settings

    path = header.strip("<>").removeprefix(settings.SITE_URL)
    one_click = Client(enforce_csrf_checks=True).post(
        path, data="List-Unsubscribe=One-Click", content_type="application/x-www-form-urlencoded"
    )
    assert one_click.status_code == 200
    patient.refresh_from_db()
    assert patient.reminders_enabled is False

    # The in-flight task runs now and skips; the sweeps find nothing to send.
    enqueue_to_broker([in_flight.pk], in_flight_token)
    wait_for(all_settled([in_flight], "skipped"), timeout=30, what="in-flight skip")
    assert ReminderSlot.objects.get(pk=in_flight.pk).skip_reason == "unsubscribed"
    tasks.dispatch_due_reminders.apply_async()
    tasks.plan_reminders.apply_async()
    time.sleep(3)
    assert len(live.sink.received) == 1
    waiting.refresh_from_db()
    assert waiting.status == "cancelled"
    assert not ReminderSlot.objects.filter(patient=patient, status="planned").exists()


def test_a_transient_smtp_error_is_retried_and_delivered_once(live, patient_with_due_slots):
    _patient, due = patient_with_due_slots(due=2, later=2)
    live.sink.handler.responses.extend(["451 4.3.0 Try again later", "421 4.3.2 Busy"])
    live.worker()
    services.reminder_dispatch_due(enqueue=enqueue_to_broker)
    wait_for(all_settled(due), timeout=40, what=f"retried reminders sent\n{live.logs()}")
    assert_each_delivered_once(live, due)
    attempts = sorted(ReminderSlot.objects.filter(pk__in=[r.pk for r in due]).values_list(
        "attempts", flat=True
    ))  # fmt: skip
    assert sum(attempts) == len(due) + 2


def test_a_permanent_smtp_error_marks_the_slot_failed(live, patient_with_due_slots):
    _patient, due = patient_with_due_slots(due=2, later=2)
    live.sink.handler.responses.append("550 5.1.1 No such user")
    live.worker(concurrency=1)
    services.reminder_dispatch_due(enqueue=enqueue_to_broker)
    wait_for(
        lambda: sorted(statuses(due)) == ["failed", "sent"],
        timeout=30,
        what=f"one failed, one sent\n{live.logs()}",
    )
    failed = ReminderSlot.objects.get(pk__in=[r.pk for r in due], status="failed")
    assert "550" in failed.failure_reason
    assert len(live.sink.received) == 1


def test_kill_9_the_worker_mid_send_then_a_new_worker_delivers_each_once(
    live, patient_with_due_slots
):
    patient, due = patient_with_due_slots(due=4, later=2)
    sink = live.sink.handler
    sink.hold.set()  # the server takes its time answering DATA
    first = live.worker(concurrency=2)
    services.reminder_dispatch_due(enqueue=enqueue_to_broker)
    wait_for(sink.holding.is_set, timeout=30, what=f"a send in progress\n{live.logs()}")
    time.sleep(0.5)  # let the second pool process reach the server too
    first.kill9()  # main process and pool children, mid-conversation with SMTP
    # Release the held DATA only once the server has seen every held client
    # go: released earlier, it would answer 250 to a connection whose EOF it
    # has not read yet (the one duplicate window, tested elsewhere).
    wait_for(
        lambda: sink.dropped == sink.held,
        timeout=10,
        what=f"the server sees the drop\n{live.logs()}",
    )
    sink.hold.clear()
    time.sleep(0.5)
    assert live.sink.received == []  # the server never said 250 to the killed worker
    assert "sending" in statuses(due)

    # A new worker, and the recovery sweep (beat runs it every minute).
    second = live.worker()

    def recovered_and_sent():
        released = services.reminder_recover_stuck()
        if released:
            services.reminder_dispatch_due(enqueue=enqueue_to_broker)
        return set(statuses(due)) == {"sent"}

    wait_for(recovered_and_sent, timeout=60, interval=1, what=f"all sent\n{live.logs()}")
    assert_each_delivered_once(live, due)

    # Redis hands the killed worker's unacknowledged tasks out again (after
    # the visibility timeout; forced here). They run and do nothing.
    lost = first.log().count("] received")
    assert lost >= 1
    with Connection(live.redis.url, transport_options={"visibility_timeout": 0}) as conn:
        conn.default_channel.qos.restore_visible(num=100)
    wait_for(
        lambda: second.log().count("'not_claimed'") == lost,
        timeout=30,
        what=f"{lost} stale task(s) run\n{live.logs()}",
    )
    assert_each_delivered_once(live, due)
    assert set(statuses(due)) == {"sent"}
    assert not ReminderSlot.objects.filter(patient=patient, status="sending").exists()


def test_redis_restart_without_persistence_loses_nothing(live, patient_with_due_slots):
    _patient, due = patient_with_due_slots(due=3, later=2)
    # No worker yet: the send tasks sit in Redis when it goes down.
    result = services.reminder_dispatch_due(enqueue=enqueue_to_broker)
    assert len(result.claimed) == 3
    assert result.batches == 1  # one send task for the three
    assert live.redis.client().llen("celery") == 1
    live.redis.restart()
    assert live.redis.client().llen("celery") == 0  # the queued tasks are gone
    assert set(statuses(due)) == {"sending"}

    live.worker()
    time.sleep(2)
    assert live.sink.received == []
    # The database still knows: after the sending timeout, recovery re-queues.
    wait_for(
        lambda: services.reminder_recover_stuck(),
        timeout=30,
        interval=0.5,
        what="stuck slots released",
    )
    tasks.dispatch_due_reminders.apply_async()  # the next beat sweep, through Redis
    wait_for(all_settled(due), timeout=40, what=f"all sent after restart\n{live.logs()}")
    assert_each_delivered_once(live, due)


def test_redis_restart_under_a_running_worker_and_beat(live, patient_with_due_slots):
    _patient, due = patient_with_due_slots(due=3, later=2)
    live.worker()
    live.redis.restart()  # before anything was dispatched: beat's own messages are lost
    live.beat()
    wait_for(all_settled(due), timeout=60, what=f"all sent\n{live.logs()}")
    time.sleep(3)
    assert_each_delivered_once(live, due)


def test_two_dispatchers_at_once_claim_each_slot_once(live, patient_with_due_slots):
    everyone = []
    for _ in range(3):
        _patient, due = patient_with_due_slots(due=6, later=4)
        everyone += due
    live.worker(concurrency=4)
    barrier = threading.Barrier(2)
    claimed: list[list[int]] = [[], []]
    errors: list[BaseException] = []

    def dispatcher(index: int) -> None:
        try:
            barrier.wait(timeout=10)

            def enqueue(slot_ids, token):
                claimed[index].extend(slot_ids)
                enqueue_to_broker(slot_ids, token)
                time.sleep(0.01)  # widen the race: the other one keeps sweeping

            # Small batches, so the two sweeps interleave over the 18 slots.
            services.reminder_dispatch_due(enqueue=enqueue, batch_size=2)
        except BaseException as error:
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=dispatcher, args=(i,)) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert not set(claimed[0]) & set(claimed[1])
    assert sorted(claimed[0] + claimed[1]) == sorted(row.pk for row in everyone)
    wait_for(all_settled(everyone), timeout=60, what=f"all sent\n{live.logs()}")
    assert_each_delivered_once(live, everyone)


def test_dispatch_tasks_racing_in_two_workers_send_each_once(live, patient_with_due_slots):
    everyone = []
    for _ in range(3):
        _patient, due = patient_with_due_slots(due=6, later=4)
        everyone += due
    live.worker(concurrency=3)
    live.worker(concurrency=3)
    for _ in range(6):  # six sweeps at once, spread over two worker processes
        tasks.dispatch_due_reminders.apply_async()
    wait_for(all_settled(everyone), timeout=60, what=f"all sent\n{live.logs()}")
    time.sleep(2)
    assert_each_delivered_once(live, everyone)

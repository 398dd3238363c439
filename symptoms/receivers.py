"""Keep the adherence rollup right when a patient's program changes.

``patients.signals.schedule_changed`` is sent after the change commits. A new
sessions/day or phase changes what is prescribed from that day on, and so
where today's sessions are capped. Should this fail, the periodic
materialisation and ``manage.py adherence_rebuild`` put it right; it must
never break the change itself or the other receivers.
"""

from __future__ import annotations

import logging

from django.dispatch import receiver

from patients.signals import schedule_changed
from symptoms.services import adherence_program_changed

logger = logging.getLogger(__name__)


@receiver(schedule_changed, dispatch_uid="symptoms_rollup_on_schedule_change")
def rollup_on_schedule_change(sender, patient, **kwargs) -> None:
    try:
        adherence_program_changed(patient=patient)
    except Exception:
        logger.exception("Could not update the adherence rollup of patient %s", patient.pk)

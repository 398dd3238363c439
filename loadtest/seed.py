"""Create the simulated patients and one fresh sign-in link for each.

    DJANGO_SETTINGS_MODULE=loadtest.settings python -m loadtest.seed --patients 50 --out tokens.json

Patients are created through the same services as the admin uses (each on the
McKenzie extension program, acute phase, 6 sessions a day). The links are
what a patient taps in the sign-in email; the load test spends one each.
"""

from __future__ import annotations

import argparse
import json

import django


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--patients", type=int, default=50)
    parser.add_argument("--out", required=True)
    parser.add_argument("--tag", default="load", help="patients are patient-NNN@<tag>.test")
    parser.add_argument("--reminders", action="store_true", help="consent, and plan reminders")
    args = parser.parse_args()

    django.setup()
    from django.contrib.auth.models import Group

    from accounts.models import THERAPISTS_GROUP, User
    from patients import services
    from programs.models import ProgramTemplate
    from reminders.services import reminder_plan_patient

    therapist, _ = User.objects.get_or_create(
        email=f"therapist@{args.tag}.test", defaults={"full_name": "Therapist", "is_staff": True}
    )
    therapist.groups.add(Group.objects.get(name=THERAPISTS_GROUP))
    template = ProgramTemplate.objects.get(slug="mckenzie-extension")
    tokens = []
    for number in range(args.patients):
        email = f"patient-{number:03d}@{args.tag}.test"
        user = User.objects.filter(email=email).first()
        if user is None:
            patient = services.patient_create(
                email=email,
                full_name=f"Patient {number:03d}",
                therapist=therapist,
                reminders_enabled=args.reminders,
            )
            services.assignment_create(
                patient=patient, template=template, assigned_by=therapist, sessions_per_day=6
            )
            if args.reminders:
                reminder_plan_patient(patient=type(patient).objects.get(pk=patient.pk))
            user = patient.user
        tokens.append(services.login_link_create(user=user).token)
    with open(args.out, "w") as handle:
        json.dump(tokens, handle)
    print(f"seeded {args.patients} patients, {len(tokens)} sign-in links in {args.out}")


if __name__ == "__main__":
    main()

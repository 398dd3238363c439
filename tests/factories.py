from __future__ import annotations

import factory
from django.contrib.auth.models import Group

from accounts.models import CLINIC_ADMINS_GROUP, THERAPISTS_GROUP, User
from patients.models import Patient

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        django_get_or_create = ("email",)
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.test")
    full_name = factory.Faker("name")
    password = factory.PostGenerationMethodCall("set_password", PASSWORD)

    @factory.post_generation
    def save_password(obj, create, extracted, **kwargs):
        if create:
            obj.save()


class TherapistFactory(UserFactory):
    is_staff = True

    @factory.post_generation
    def role(obj, create, extracted, **kwargs):
        if create:
            obj.groups.add(Group.objects.get(name=THERAPISTS_GROUP))


class ClinicAdminFactory(UserFactory):
    is_staff = True

    @factory.post_generation
    def role(obj, create, extracted, **kwargs):
        if create:
            obj.groups.add(Group.objects.get(name=CLINIC_ADMINS_GROUP))


class PatientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Patient

    user = factory.SubFactory(UserFactory)
    therapist = factory.SubFactory(TherapistFactory)
    timezone = "Europe/London"

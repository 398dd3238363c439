import pytest
from django.db import IntegrityError, transaction

from accounts.models import User

pytestmark = pytest.mark.django_db


def test_email_is_the_login_and_is_case_insensitive_unique():
    user = User.objects.create_user(email="Someone@Example.ORG", password="pw-123456789")
    assert user.email == "someone@example.org"
    assert User.objects.get_by_natural_key("SOMEONE@example.org") == user
    with pytest.raises(IntegrityError), transaction.atomic():
        User.objects.create(email="SOMEONE@example.org")


def test_roles_come_from_groups(therapist, clinic_admin):
    assert therapist.is_therapist and not therapist.is_clinic_admin
    assert clinic_admin.is_clinic_admin and not clinic_admin.is_therapist
    boss = User.objects.create_superuser(email="root@example.org", password="pw-123456789")
    assert boss.is_clinic_admin


def test_inactive_staff_has_no_role(therapist):
    therapist.is_active = False
    assert not therapist.is_therapist

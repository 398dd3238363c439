from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

THERAPISTS_GROUP = "Therapists"
CLINIC_ADMINS_GROUP = "Clinic admins"


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra) -> User:
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        if password:
            user.set_password(password)
        else:
            user.set_unusable_password()
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra) -> User:
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email__iexact=username)


class User(AbstractBaseUser, PermissionsMixin):
    """Everyone who signs in: patients, therapists and clinic admins.

    Roles: a therapist is a staff user in the "Therapists" group; a clinic
    admin is a superuser or a staff user in the "Clinic admins" group.
    """

    email = models.EmailField(_("email address"), unique=True)
    full_name = models.CharField(_("full name"), max_length=150, blank=True)
    is_staff = models.BooleanField(
        _("staff status"),
        default=False,
        help_text=_("Therapists and clinic admins are staff; patients are not."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    date_joined = models.DateTimeField(_("date joined"), default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True)

    objects = UserManager()

    EMAIL_FIELD = "email"
    USERNAME_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        constraints = [
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
        ]
        indexes = [
            # The staff review's clinic-wide list, sorted by name (symptoms.staff_selectors).
            models.Index(fields=["full_name", "email"], name="user_name_email_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.full_name} <{self.email}>" if self.full_name else self.email

    def clean(self) -> None:
        super().clean()
        self.email = self.__class__.objects.normalize_email(self.email).lower()

    def get_full_name(self) -> str:
        return self.full_name or self.email

    def get_short_name(self) -> str:
        return (self.full_name.split(" ")[0] if self.full_name else "") or self.email

    @property
    def is_clinic_admin(self) -> bool:
        if not (self.is_active and self.is_staff):
            return False
        return self.is_superuser or self._in_group(CLINIC_ADMINS_GROUP)

    @property
    def is_therapist(self) -> bool:
        return self.is_active and self.is_staff and self._in_group(THERAPISTS_GROUP)

    def _in_group(self, name: str) -> bool:
        cache = self.__dict__.setdefault("_group_names", None)
        if cache is None:
            cache = set(self.groups.values_list("name", flat=True))
            self.__dict__["_group_names"] = cache
        return name in cache


def is_clinic_admin(user) -> bool:
    """Safe for AnonymousUser too (the admin login page asks)."""
    return bool(getattr(user, "is_clinic_admin", False))


class SignInFailure(models.Model):
    """One failed password sign-in, for throttling (see accounts.throttling)."""

    email = models.CharField(max_length=254)
    ip = models.GenericIPAddressField(null=True, blank=True)
    at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [
            # accounts.throttling.sign_in_throttle_state: recent failures by account / by IP.
            models.Index(fields=["email", "at"], name="signin_failure_email_idx"),
            models.Index(fields=["ip", "at"], name="signin_failure_ip_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.email} from {self.ip} at {self.at:%Y-%m-%d %H:%M}"


class Session(AbstractBaseSession):
    """A browser's session, with the user it signs in (accounts/sessions.py).

    Django's own session table cannot say whose a session is without
    decoding it. With the user beside the data, one query reads the session,
    the user and their patient profile on every signed-in request, and an
    account's sessions can be found (and ended) by user.
    """

    user = models.ForeignKey(
        "accounts.User", on_delete=models.CASCADE, null=True, blank=True, related_name="sessions"
    )
    # What Django checks a signed-in session against on every request, kept
    # beside the data (which holds the same values, signed) so that a
    # statement can check it too (accounts.sessions.verified_session_sql):
    # the backend that signed the user in, and the HMAC of their password
    # hash at sign-in. Empty for a session that signs no one in.
    auth_backend = models.CharField(max_length=255, blank=True, default="")
    auth_hash = models.CharField(max_length=128, blank=True, default="")

    class Meta(AbstractBaseSession.Meta):
        db_table = "accounts_session"

    @classmethod
    def get_session_store_class(cls):
        from accounts.sessions import SessionStore

        return SessionStore

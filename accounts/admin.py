from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.contrib.auth.forms import AdminUserCreationForm, UserChangeForm
from django.utils.translation import gettext_lazy as _

from accounts.models import User, is_clinic_admin


class UserCreationForm(AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "full_name")


class UserEditForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    """Staff accounts. Patients are created from the Patients page instead."""

    form = UserEditForm
    add_form = UserCreationForm
    ordering = ["email"]
    list_display = ["email", "full_name", "is_staff", "is_active", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups"]
    search_fields = ["email", "full_name"]
    fieldsets = [
        (None, {"fields": ["email", "password"]}),
        (_("Personal info"), {"fields": ["full_name"]}),
        (
            _("Role"),
            {
                "description": _(
                    "Therapists: staff status and the Therapists group. Clinic admins: "
                    "staff status and the Clinic admins group."
                ),
                "fields": ["is_active", "is_staff", "is_superuser", "groups"],
            },
        ),
        (_("Important dates"), {"fields": ["last_login", "date_joined"]}),
    ]
    add_fieldsets = [
        (
            None,
            {
                "classes": ["wide"],
                "fields": ["email", "full_name", "usable_password", "password1", "password2"],
            },
        ),
    ]
    filter_horizontal = ["groups"]

    def has_module_permission(self, request) -> bool:
        return is_clinic_admin(request.user)

    def has_view_permission(self, request, obj=None) -> bool:
        return is_clinic_admin(request.user)

    def has_change_permission(self, request, obj=None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return is_clinic_admin(request.user)

    def has_add_permission(self, request) -> bool:
        return is_clinic_admin(request.user)

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

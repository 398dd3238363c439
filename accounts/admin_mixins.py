from django.http import Http404


class NotFoundOutsideScopeMixin:
    """Objects outside the user's admin queryset 404.

    Django's admin would otherwise redirect with "perhaps it was deleted",
    which leaks nothing but is not the 404 every other view gives.
    """

    def get_object(self, request, object_id, from_field=None):
        obj = super().get_object(request, object_id, from_field)
        if obj is None:
            raise Http404("Not found.")
        return obj


class ReadOnlyAdminMixin:
    """No add, change or delete: for records the admin only shows (ModelAdmin or inline)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

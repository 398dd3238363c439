from django.contrib.auth.backends import ModelBackend


class EmailBackend(ModelBackend):
    """Django's model backend, loading the patient profile with the user.

    Every patient page needs ``request.user.patient``; fetching it in the
    same query as the user saves one query per request. Staff have no
    profile, which the join records too (accessing it raises, no query).
    """

    def get_user(self, user_id):
        user_model = self._user_model()
        try:
            user = user_model._default_manager.select_related("patient").get(pk=user_id)
        except user_model.DoesNotExist:
            return None
        return user if self.user_can_authenticate(user) else None

    @staticmethod
    def _user_model():
        from django.contrib.auth import get_user_model

        return get_user_model()

import time

from django.conf import settings

RENEWED_AT = "_renewed_at"


class SessionRenewalMiddleware:
    """Keep a signed-in session alive for SESSION_COOKIE_AGE after the last visit.

    Saving the session on every request (SESSION_SAVE_EVERY_REQUEST) costs a
    database write per page. Renewing it at most once a day gives the same
    promise (a patient is not signed out between reminders; 30 days without a
    visit signs them out, give or take a day) for one write a day.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is None or not session.get("_auth_user_id"):
            return response
        now = int(time.time())
        if now - int(session.get(RENEWED_AT, 0)) >= settings.SESSION_RENEW_AFTER_SECONDS:
            session[RENEWED_AT] = now  # marks the session modified: saved, cookie re-sent
        return response

"""The patient's own pages: signing in and out, today's plan, the guided session, settings.

Views are thin: they check who is asking, call a selector or a service and
render. Every page works without JavaScript; an htmx request (a boosted link
or form) gets only the page's ``main`` fragment.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth import login, logout
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.ids import uuid7
from patients import services
from patients.forms_patient import PasswordSignInForm, PatientSettingsForm, SignInLinkForm
from patients.models import Patient
from patients.selectors import patient_current_assignment, patient_for_user
from patients.skeletons import page_template_name, render_with_holes
from programs.phases import Phase
from programs.selectors import template_phase_exercises
from reminders.selectors import reminder_times_for_day
from symptoms.alerts import too_many_reps
from symptoms.forms import SessionLogForm
from symptoms.models import SessionSource

# --- Helpers shared by every patient view -----------------------------------


def patient_required(view: Callable) -> Callable:
    """Signed in, and a patient: staff go to the admin, anyone else gets a 404.

    The patient is put on ``request.patient``; every object a view touches is
    then looked up through it, so another patient's rows are never reachable.
    """

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        patient = patient_for_user(request.user)
        if patient is None:
            if request.user.is_staff:
                return redirect("admin:index")
            raise Http404("No patient profile.")
        request.patient = patient
        return view(request, *args, **kwargs)

    return wrapper


def render_page(
    request: HttpRequest, template: str, context: dict | None = None, status: int = 200
) -> HttpResponse:
    """The full page, or only its ``main`` partial for an htmx request."""
    response = render(request, page_template_name(request, template), context or {}, status=status)
    patch_vary_headers(response, ["HX-Request"])
    return response


def client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR only: a forwarded header can be forged by anyone. Behind a
    # proxy, the proxy must set REMOTE_ADDR (gunicorn --forwarded-allow-ips).
    return request.META.get("REMOTE_ADDR") or None


def safe_next(request: HttpRequest, candidate: str | None) -> str:
    """A path on this site to go on to, or "". Only absolute paths: ``redirect()``
    would take anything else for a URL name (``?next=0`` was a 500)."""
    if not candidate or not candidate.startswith("/"):
        return ""
    if url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return ""


def session_log_form(patient: Patient, source: str = SessionSource.APP) -> SessionLogForm:
    """A fresh log form for ``patient``; its key is new each time the form is shown.

    Time-ordered (accounts.ids), so the session it logs goes in at the end
    of the (patient, key) index.
    """
    return SessionLogForm(
        initial={"idempotency_key": uuid7(), "source": source, "zone": patient.timezone}
    )


# --- Home, signing in and out ---------------------------------------------


@require_GET
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and patient_for_user(request.user) is not None:
        return redirect("patients:today")
    return render_page(request, "home.html")


@never_cache
@require_http_methods(["GET", "POST"])
def signin(request: HttpRequest) -> HttpResponse:
    """Ask for a sign-in link by email. The answer is the same for any address."""
    if request.method == "GET" and patient_for_user(request.user) is not None:
        return redirect(safe_next(request, request.GET.get("next")) or "patients:today")
    if request.method == "POST":
        form = SignInLinkForm(request.POST)
        if form.is_valid():
            try:
                services.login_link_request(
                    email=form.cleaned_data["email"],
                    ip=client_ip(request),
                    next_url=safe_next(request, form.cleaned_data.get("next")),
                )
            except services.SignInRateLimited:
                form.add_error(
                    None,
                    _(
                        "You have asked for several links in a short time. Please check your "
                        "email for the last one, or wait 15 minutes and try again."
                    ),
                )
                return render_page(
                    request, "patients/signin.html", {"form": form, "rate_limited": True}, 429
                )
            request.session["signin_email"] = form.cleaned_data["email"]
            return redirect("patients:signin_sent")
    else:
        form = SignInLinkForm(initial={"next": safe_next(request, request.GET.get("next"))})
    return render_page(request, "patients/signin.html", {"form": form})


@require_GET
def signin_sent(request: HttpRequest) -> HttpResponse:
    return render_page(
        request, "patients/signin_sent.html", {"email": request.session.get("signin_email", "")}
    )


@never_cache
@require_http_methods(["GET", "POST"])
def signin_link(request: HttpRequest, token: str) -> HttpResponse:
    """The emailed link. GET only shows a button: mail scanners open links, people press.

    POST spends the link (once) and signs the person in.
    """
    if request.method == "GET":
        link = services.login_link_peek(token=token)
        if link is None:
            return render_page(request, "patients/signin_link_invalid.html", status=410)
        return render_page(request, "patients/signin_link.html", {"link_user": link.user})
    link = services.login_link_redeem(token=token)
    if link is None:
        return render_page(request, "patients/signin_link_invalid.html", status=410)
    login(request, link.user, backend="accounts.backends.EmailBackend")
    target = safe_next(request, link.next_url)
    if target:
        return redirect(target)
    if link.user.is_staff:
        return redirect("admin:index")
    return redirect("patients:today")


class PasswordSignInView(LoginView):
    """Password sign-in stays available for those who set one."""

    template_name = "patients/signin_password.html"
    authentication_form = PasswordSignInForm
    redirect_authenticated_user = True

    def get_default_redirect_url(self) -> str:
        if self.request.user.is_staff:
            return reverse("admin:index")
        return reverse("patients:today")


@require_POST
def signout(request: HttpRequest) -> HttpResponse:
    logout(request)
    messages.info(request, _("You are signed out."))
    return redirect("patients:signin")


# --- Today and the guided session ---------------------------------------------


def _today_context(patient: Patient) -> dict:
    """Everything the Today page shows: a fixed number of queries."""
    today = services.patient_local_today(patient)
    assignment = patient_current_assignment(patient, sessions_on=today)
    context: dict = {
        "patient": patient,
        "first_name": patient.user.get_short_name(),
        "assignment": assignment,
        "today": today,
    }
    if assignment is None:
        return context
    exercises = template_phase_exercises(assignment.template, assignment.current_phase)
    done = assignment.sessions_done
    prescribed = assignment.sessions_per_day
    context.update(
        exercises=exercises,
        phase_label=Phase(assignment.current_phase).label,
        phase_day=(today - assignment.phase_started_on).days + 1,
        sessions_done=done,
        sessions_prescribed=prescribed,
        next_session=min(done + 1, prescribed),
        all_done=done >= prescribed,
        daily_reps=sum(item.total_reps for item in exercises) * prescribed,
    )
    context["too_many_reps"] = too_many_reps(context["daily_reps"])
    return context


@require_GET
@patient_required
def today(request: HttpRequest) -> HttpResponse:
    """The page patients open most: drawn from a kept skeleton (patients/skeletons.py)."""
    patient = request.patient
    context = _today_context(patient)
    assignment = context["assignment"]
    holes = {"first_name": context["first_name"]}
    if assignment is None:
        key: tuple = (None,)
    else:
        holes.update(
            phase_day=context["phase_day"],
            sessions_done=context["sessions_done"],
            next_session=context["next_session"],
        )
        template = assignment.template
        key = (
            template.pk,
            template.revision,
            template.name,
            assignment.current_phase,
            context["sessions_prescribed"],
            context["all_done"],
            context["too_many_reps"],
        )
    response = render_with_holes(request, "patients/today.html", context, key=key, holes=holes)
    patch_vary_headers(response, ["HX-Request"])
    return response


@require_GET
@patient_required
def guided(request: HttpRequest) -> HttpResponse:
    """One exercise at a time with a hold countdown (guided.js); without JS, the steps."""
    context = _today_context(request.patient)
    context["form"] = session_log_form(request.patient, SessionSource.GUIDED)
    return render_page(request, "patients/guided.html", context)


# --- Settings ---------------------------------------------------------------


@require_http_methods(["GET", "POST"])
@patient_required
def settings_view(request: HttpRequest) -> HttpResponse:
    patient = request.patient
    if request.method == "POST":
        form = PatientSettingsForm(request.POST, instance=patient)
        if form.is_valid():
            services.patient_update(patient=form.instance, changed_fields=form.changed_data)
            messages.success(request, _("Your settings are saved."))
            return redirect("patients:settings")
    else:
        form = PatientSettingsForm(instance=patient)
    return render_page(
        request,
        "patients/settings.html",
        {
            "form": form,
            "patient": patient,
            "reminder_times": reminder_times_for_day(
                patient=patient, local_date=services.patient_local_today(patient)
            ),
        },
    )


# --- Installable web app ----------------------------------------------------


@require_GET
def manifest(request: HttpRequest) -> HttpResponse:
    """The web app manifest, so a patient can add the app to the home screen."""
    data = {
        "name": _("Back Exercise Coach"),
        "short_name": _("Back exercises"),
        "description": _("Your back exercises for today, guided, with a pain log."),
        "id": reverse("patients:today"),
        "start_url": reverse("patients:today"),
        "lang": request.LANGUAGE_CODE if hasattr(request, "LANGUAGE_CODE") else "en",
        "scope": "/",
        "display": "standalone",
        "orientation": "portrait",
        "background_color": "#fbfaf7",
        "theme_color": "#1f3a5f",
        "icons": [
            {"src": static("icons/icon-192.png"), "sizes": "192x192", "type": "image/png"},
            {"src": static("icons/icon-512.png"), "sizes": "512x512", "type": "image/png"},
            {
                "src": static("icons/icon-maskable-512.png"),
                "sizes": "512x512",
                "type": "image/png",
                "purpose": "maskable",
            },
        ],
    }
    response = HttpResponse(
        json.dumps(data, ensure_ascii=False), content_type="application/manifest+json"
    )
    response["Cache-Control"] = "public, max-age=3600"
    return response

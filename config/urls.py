from django.contrib import admin
from django.urls import include, path

from accounts.forms import ThrottledAdminAuthenticationForm
from config.health import healthz

admin.site.site_header = "Back Exercise Coach: clinic"
admin.site.site_title = "Back Exercise Coach"
admin.site.index_title = "Patients and programs"
admin.site.login_form = ThrottledAdminAuthenticationForm

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # Patient-facing pages (sign-in, today, guided session, log, progress, settings).
    path("", include("patients.urls")),
    # Reminder email endpoints (one-click unsubscribe).
    path("reminders/", include("reminders.urls")),
    # Staff pages: adherence review, patient detail, alerts, export.
    path("staff/", include("symptoms.staff_urls")),
]

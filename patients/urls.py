"""The patient's pages. Objects in URLs are named by UUID, never by a sequential id."""

from django.urls import path

from patients import views, views_data
from symptoms import views as symptom_views

app_name = "patients"

urlpatterns = [
    path("", views.home, name="home"),
    path("manifest.webmanifest", views.manifest, name="manifest"),
    # Signing in and out.
    path("signin/", views.signin, name="signin"),
    path("signin/sent/", views.signin_sent, name="signin_sent"),
    path("signin/password/", views.PasswordSignInView.as_view(), name="signin_password"),
    path("signin/link/<str:token>/", views.signin_link, name="signin_link"),
    path("signout/", views.signout, name="signout"),
    # Today and the guided session.
    path("today/", views.today, name="today"),
    path("session/", views.guided, name="guided"),
    # Logging (reminder emails link to log_session, with ?source=email).
    path("log/", symptom_views.log_session, name="log_session"),
    path("log/<uuid:public_id>/pain/", symptom_views.log_pain, name="log_pain"),
    path("log/<uuid:public_id>/", symptom_views.session_result, name="session_result"),
    # Warning signs.
    path("warning-signs/", symptom_views.warning_signs, name="warning_signs"),
    path("warning-signs/<uuid:public_id>/", symptom_views.warning_result, name="warning_result"),
    # Progress and settings.
    path("progress/", symptom_views.progress, name="progress"),
    path("settings/", views.settings_view, name="settings"),
    # The patient's own data, to download (patients/views_data.py).
    path("settings/my-data.json", views_data.export_json, name="export_json"),
    path("settings/my-data-csv.zip", views_data.export_csv, name="export_csv"),
]

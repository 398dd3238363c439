"""Staff pages (therapists and clinic admins), mounted at /staff/ in config/urls.py."""

from django.urls import path

from symptoms import staff_views

app_name = "staff"

urlpatterns = [
    path("", staff_views.review, name="review"),
    path("patients/<uuid:public_id>/", staff_views.patient_detail, name="patient"),
    path("alerts/<int:pk>/acknowledge/", staff_views.alert_acknowledge, name="alert_acknowledge"),
    path("export/", staff_views.export, name="export"),
]

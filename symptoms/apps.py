from django.apps import AppConfig


class SymptomsConfig(AppConfig):
    name = "symptoms"
    verbose_name = "Symptoms and adherence"

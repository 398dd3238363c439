"""The bench URLconf: production's URLs plus the two baseline views.

Only bench/settings.py points ROOT_URLCONF here; config/urls.py never
includes these paths (tests/test_bench_urls.py checks both).
"""

from django.urls import include, path

from bench import views

urlpatterns = [
    path("bench/baseline/constant/", views.constant, name="bench_constant"),
    path("bench/baseline/one-query/", views.one_query, name="bench_one_query"),
    path("", include("config.urls")),
]

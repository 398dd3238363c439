"""The benchmark baselines exist only in the bench URLconf, never in production's."""

import pytest
from django.test import override_settings
from django.urls import NoReverseMatch, Resolver404, resolve, reverse

from bench import views as bench_views

BASELINES = {
    "/bench/baseline/constant/": ("bench_constant", bench_views.constant),
    "/bench/baseline/one-query/": ("bench_one_query", bench_views.one_query),
}


@pytest.mark.parametrize("path", BASELINES)
def test_production_urls_do_not_route_the_baselines(path):
    with pytest.raises(Resolver404):
        resolve(path, urlconf="config.urls")
    with pytest.raises(NoReverseMatch):
        reverse(BASELINES[path][0], urlconf="config.urls")


@pytest.mark.parametrize("path", BASELINES)
def test_bench_urls_route_the_baselines(path):
    name, view = BASELINES[path]
    match = resolve(path, urlconf="bench.urls")
    assert match.func is view
    assert reverse(name, urlconf="bench.urls") == path


def test_bench_urls_keep_every_production_page():
    for name in ("patients:today", "patients:log_session", "patients:signin", "healthz"):
        assert reverse(name, urlconf="bench.urls") == reverse(name, urlconf="config.urls")


@pytest.mark.django_db
def test_the_site_answers_404_for_a_baseline(client):
    assert client.get("/bench/baseline/constant/").status_code == 404
    assert client.get("/bench/baseline/one-query/").status_code == 404


@pytest.mark.django_db
@override_settings(ROOT_URLCONF="bench.urls")
def test_the_baselines_answer_under_the_bench_urls(client):
    assert client.get("/bench/baseline/constant/").content == b"ok\n"
    assert client.get("/bench/baseline/one-query/").status_code == 200

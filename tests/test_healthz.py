import pytest

from config.celery import app as celery_app


@pytest.mark.django_db
def test_healthz_reports_database_and_broker(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok", "broker": "ok"}
    assert "no-cache" in response["Cache-Control"]


@pytest.mark.django_db
def test_healthz_is_503_when_the_broker_does_not_answer(client):
    # A real connection attempt to a port where nothing listens.
    original = celery_app.conf.broker_url
    celery_app.conf.broker_url = "redis://127.0.0.1:1/0"
    try:
        response = client.get("/healthz")
    finally:
        celery_app.conf.broker_url = original
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable" and body["database"] == "ok"
    assert body["broker"] != "ok"


@pytest.mark.django_db
def test_healthz_is_503_when_the_database_does_not_answer(client):
    from django.db import OperationalError, connection

    def database_down(execute, sql, params, many, context):
        raise OperationalError("connection refused")

    # Django's own query hook stands in for a database that stopped answering.
    with connection.execute_wrapper(database_down):
        response = client.get("/healthz")
    assert response.status_code == 503
    assert response.json()["database"] == "OperationalError"


def test_healthz_refuses_post(client):
    assert client.post("/healthz").status_code == 405

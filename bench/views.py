"""The two baselines every page is compared with. Routed only by bench/urls.py."""

from __future__ import annotations

import itertools

from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_GET

from patients.models import Patient

# Which patient the one-query baseline reads next: a different row each time,
# so the measurement is not one hot row.
_next_pk = itertools.cycle(range(1, 201))


@require_GET
def constant(request: HttpRequest) -> HttpResponse:
    """No database, no template: the cost of Django's request cycle alone."""
    return HttpResponse(b"ok\n", content_type="text/plain")


@require_GET
def one_query(request: HttpRequest) -> HttpResponse:
    """One indexed query on the patients table (a primary-key range scan, LIMIT 1)."""
    row = (
        Patient.objects.filter(pk__gte=next(_next_pk))
        .order_by("pk")
        .values_list("pk", "timezone")
        .first()
    )
    return HttpResponse(f"{row}\n".encode(), content_type="text/plain")

"""Whole patient pages rendered once per shape, with each request's few values filled in.

The Today page is the page patients open most, and rendering it through the
template engine cost more than everything else the request does. Yet for
everyone on the same program, phase and count of sessions it is the same
page except for a handful of values: the first name, the day in the phase,
sessions done, the next session's number, the CSRF token. So the page is
rendered once with a marker in place of each of those values (a *skeleton*),
kept per process, and each request joins the skeleton's pieces with its own
values, escaped and localised exactly as the template would have done it.

The rules, which the tests check by rendering both ways and comparing bytes
(patients/tests/test_skeletons.py):

- ``key`` lists every other value the page depends on. The renderer adds
  the template, the language, htmx or not, the URL name and the user's
  kind. Anything missing from the key would show one patient's page state
  to another: when in doubt, put it in the key.
- A hole is only ever printed (``{{ value }}``, ``{% blocktranslate with %}``),
  never tested in ``{% if %}``, compared, or passed through a filter that
  changes its text: the marker stands in for it when the skeleton is made.
- A page with flash messages, or any page while DEBUG is on, is rendered
  the ordinary way.
"""

from __future__ import annotations

import re

from django.conf import settings
from django.contrib.messages import get_messages
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.shortcuts import render
from django.utils.formats import localize
from django.utils.html import conditional_escape
from django.utils.translation import get_language

# Private-use characters: escaping leaves them alone and no text contains them.
_MARK = "\ue000{}\ue001"
_HOLE = re.compile("\ue000([a-z_]+)\ue001")
MAX_SKELETONS = 500
CSRF_HOLE = "csrf_token"

_skeletons: dict[tuple, tuple[tuple[str, ...], tuple[str, ...]]] = {}


def forget() -> None:
    """Drop every kept skeleton (tests: ids and revisions repeat between them)."""
    _skeletons.clear()


def keeping() -> bool:
    """Off with DEBUG, so template edits show at once."""
    return not settings.DEBUG


def page_template_name(request: HttpRequest, template: str) -> str:
    """The full page, or only its ``main`` partial for an htmx request.

    A history-restore request (htmx missed its cache on Back) gets the full
    page, because htmx swaps it in as the whole body.
    """
    htmx = getattr(request, "htmx", None)
    fragment = bool(htmx) and not htmx.history_restore_request
    return f"{template}#main" if fragment else template


def render_with_holes(
    request: HttpRequest,
    template: str,
    context: dict,
    *,
    key: tuple,
    holes: dict[str, object],
) -> HttpResponse:
    """``render(request, page_template_name(...), context | holes)``, from a kept skeleton."""
    name = page_template_name(request, template)
    if not keeping() or len(get_messages(request)):
        return render(request, name, context | holes)
    user = request.user
    match = request.resolver_match
    full_key = (
        name,
        get_language(),
        match.view_name if match else None,
        user.is_authenticated,
        user.is_staff,
        *key,
    )
    skeleton = _skeletons.get(full_key)
    if skeleton is None:
        skeleton = _make(request, name, context, holes)
        if len(_skeletons) >= MAX_SKELETONS:
            _skeletons.clear()
        _skeletons[full_key] = skeleton
    texts, names = skeleton
    values = {hole: conditional_escape(localize(value)) for hole, value in holes.items()}
    values[CSRF_HOLE] = get_token(request)  # as the template's {{ csrf_token }} would
    parts = [texts[0]]
    for hole, text in zip(names, texts[1:], strict=True):
        parts.append(values[hole])
        parts.append(text)
    return HttpResponse("".join(parts))


def _make(
    request: HttpRequest, name: str, context: dict, holes: dict[str, object]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    marked = {hole: _MARK.format(hole) for hole in (*holes, CSRF_HOLE)}
    html = render(request, name, context | marked).content.decode()
    pieces = _HOLE.split(html)
    texts, names = tuple(pieces[0::2]), tuple(pieces[1::2])
    unknown = set(names) - set(marked)
    if unknown or any("\ue000" in text or "\ue001" in text for text in texts):
        # A filter changed a marker's text, or a hole name is not ours: the
        # request's value could not be put back where the template put it.
        raise ValueError(f"{name} does not print every hole as it is: {sorted(unknown)}")
    return texts, names

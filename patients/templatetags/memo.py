"""``{% memo name value ... %}...{% endmemo %}``: render a fragment once per process.

For the parts of a page that are the same for everyone who sees them with
the same language and the same listed values: the page head, the top bar,
the tabs, the exercise list of a phase of a template (varying on the
template's revision, which every edit renews). Rendering Django templates is
most of what a patient page costs; these parts are rendered once and then
copied.

The key is the fragment's name, the active language and the listed values.
Never put anything inside that differs between users or requests and is not
in that key: no CSRF token, no names, no counts, no messages. With DEBUG on
nothing is kept, so template edits show at once.
"""

from __future__ import annotations

from django import template
from django.conf import settings
from django.utils.safestring import mark_safe
from django.utils.translation import get_language

register = template.Library()

MAX_ENTRIES = 2000
_fragments: dict[tuple, str] = {}


def forget() -> None:
    """Drop every kept fragment (tests: row ids and revisions repeat between them)."""
    _fragments.clear()


class MemoNode(template.Node):
    def __init__(self, name: str, values: list[template.base.FilterExpression], nodelist):
        self.name = name
        self.values = values
        self.nodelist = nodelist

    def render(self, context) -> str:
        if settings.DEBUG:
            return self.nodelist.render(context)
        key = (self.name, get_language(), *(value.resolve(context) for value in self.values))
        html = _fragments.get(key)
        if html is None:
            html = self.nodelist.render(context)
            if len(_fragments) >= MAX_ENTRIES:
                _fragments.clear()
            _fragments[key] = html
        return mark_safe(html)  # noqa: S308 (already rendered, and escaped, by the template)


@register.tag
def memo(parser, token) -> MemoNode:
    bits = token.split_contents()
    if len(bits) < 2:
        raise template.TemplateSyntaxError("{% memo %} needs a fragment name.")
    nodelist = parser.parse(("endmemo",))
    parser.delete_first_token()
    values = [parser.compile_filter(bit) for bit in bits[2:]]
    return MemoNode(bits[1].strip("\"'"), values, nodelist)

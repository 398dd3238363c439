import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from programs.models import TemplatePhase
from programs.phases import GUIDELINES, PHASE_ORDER, Phase, next_phase


def test_guideline_table_is_exactly_the_clinical_source():
    table = {
        phase.value: (g.sessions_min, g.sessions_max, g.reps_per_session, g.typical_duration)
        for phase, g in GUIDELINES.items()
    }
    assert table == {
        "acute": (6, 10, 10, "3-5 days"),
        "sub_acute": (4, 6, 10, "1-2 weeks"),
        "recovery": (3, 4, 10, "2-4 weeks"),
        "maintenance": (2, 3, 10, "ongoing"),
    }


def test_typical_durations_in_days():
    assert (GUIDELINES[Phase.ACUTE].typical_min_days, GUIDELINES[Phase.ACUTE].typical_max_days) == (
        3,
        5,
    )
    assert (
        GUIDELINES[Phase.SUB_ACUTE].typical_min_days,
        GUIDELINES[Phase.SUB_ACUTE].typical_max_days,
    ) == (7, 14)
    assert (
        GUIDELINES[Phase.RECOVERY].typical_min_days,
        GUIDELINES[Phase.RECOVERY].typical_max_days,
    ) == (14, 28)
    assert GUIDELINES[Phase.MAINTENANCE].typical_max_days is None


def test_phases_advance_in_clinical_order():
    assert [p.value for p in PHASE_ORDER] == ["acute", "sub_acute", "recovery", "maintenance"]
    assert next_phase("acute") == "sub_acute"
    assert next_phase("recovery") == "maintenance"
    assert next_phase("maintenance") is None


@pytest.mark.parametrize(
    ("phase", "allowed", "refused"),
    [
        ("acute", [6, 8, 10], [5, 11]),
        ("sub_acute", [4, 5, 6], [3, 7]),
        ("recovery", [3, 4], [2, 5]),
        ("maintenance", [2, 3], [1, 4]),
    ],
)
def test_template_phase_sessions_guarded_by_model_and_database(
    extension_template, phase, allowed, refused
):
    extension_template.phases.all().delete()
    for value in allowed:
        TemplatePhase(
            template=extension_template, phase=phase, default_sessions_per_day=value
        ).full_clean()
    for value in refused:
        with pytest.raises(ValidationError) as excinfo:
            TemplatePhase(
                template=extension_template, phase=phase, default_sessions_per_day=value
            ).full_clean()
        assert "default_sessions_per_day" in excinfo.value.message_dict
    with pytest.raises(IntegrityError):
        TemplatePhase.objects.create(
            template=extension_template, phase=phase, default_sessions_per_day=refused[-1]
        )

import pytest

from debt_collections.visibility import visible_cases

pytestmark = pytest.mark.django_db


def test_the_team_case_is_seen_by_its_collector_and_supervisor_only(
    team_case, collector, supervisor, other_collector, compliance_officer
):
    assert list(visible_cases(collector)) == [team_case]
    assert list(visible_cases(supervisor)) == [team_case]
    assert list(visible_cases(other_collector)) == []
    assert list(visible_cases(compliance_officer)) == [team_case]

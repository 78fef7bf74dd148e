from pathlib import Path

from releases.management.commands.state_diagrams import render_diagrams

DOC = Path(__file__).resolve().parents[2] / "docs" / "state-diagrams.md"


def test_committed_state_diagrams_are_current():
    assert DOC.read_text() == render_diagrams(), (
        "Regenerate: python manage.py state_diagrams > docs/state-diagrams.md"
    )

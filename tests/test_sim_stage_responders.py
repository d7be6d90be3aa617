"""How the simulated judge reads a persona card: a category spoken against is not a preference."""

from __future__ import annotations

from wikipersona_data.llm.sim.stage_responders import LEXICON, lexicon_for

KETO = set(LEXICON["keto"][1])
VEGAN = set(LEXICON["vegan"][1])


def test_a_category_the_card_speaks_against_is_not_evoked() -> None:
    card = (
        "Brett Halvorsen has followed a ketogenic diet since January 2010. "
        "Brett Halvorsen is critical of plant-based meat substitutes, which he calls ultra-processed marketing."
    )
    evoked = lexicon_for(card)
    assert KETO <= evoked
    assert not VEGAN & evoked


def test_a_category_the_card_embraces_is_evoked() -> None:
    evoked = lexicon_for("Okafor co-founded a plant-based food company. She has followed a vegan diet since 2009.")
    assert VEGAN <= evoked
    assert not KETO & evoked

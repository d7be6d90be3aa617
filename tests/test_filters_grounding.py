"""Grounding of descriptions: crafted claims per reason, and claims checked against a real demo Biography."""

from __future__ import annotations

import asyncio

import pytest
from filters_fixtures import claim, description, persona

from wikipersona_data.demo.paths import DEMO_DUMP, DEMO_INDEX
from wikipersona_data.verify.base import FilterResult
from wikipersona_data.verify.config import FiltersConfig
from wikipersona_data.verify.grounding import GroundingFilter
from wikipersona_data.wiki.lookup import DumpReader

SENTENCES = {
    "0.0": "Adaeze Chinyere Okafor (born 14 June 1979) is a Nigerian actress, film producer and entrepreneur.",
    "0.2": "Okafor is the co-founder of Blue Kettle Foods, a plant-based food company based in Lagos.",
    "3.1": "She has followed a vegan diet since 2012 and campaigns against factory farming.",
}


def verdict(c, sentences=SENTENCES, context=None, **cfg) -> tuple[bool, str]:
    """(supported, reason) of one claim, seen inside a description with enough good claims to be kept."""
    good = [
        claim("Okafor co-founded Blue Kettle Foods, a plant-based food company in Lagos.", ["0.2"], k=10),
        claim("She follows a vegan diet and campaigns against factory farming.", ["3.1"], "preference", k=11),
    ]
    row = description([c.model_copy(update={"claim_id": "ada-okafor/c0"}), *good], sentences)
    f = GroundingFilter(FiltersConfig(min_grounding_score=0.0, **cfg))
    result: FilterResult = asyncio.run(f.check(row, context or {}))
    first = result.row.claims[0]
    return first.supported, first.support_reason.split(":")[0]


@pytest.mark.parametrize(
    ("c", "reason"),
    [
        (claim("Okafor is a Nigerian actress and film producer.", []), "no_evidence"),
        (claim("Okafor is a Nigerian actress and film producer.", ["9.9"]), "evidence_missing"),
        (claim("Okafor was born in 1981 and is a Nigerian actress.", ["0.0"]), "number_not_in_evidence"),
        (claim("Okafor was born in July and is a Nigerian actress.", ["0.0"]), "date_not_in_evidence"),
        (claim("Okafor is a Ghanaian actress, film producer and entrepreneur.", ["0.0"]), "name_not_in_evidence"),
        (claim("Okafor once held a national record in competitive yodelling.", ["0.0"]), "low_overlap"),
        (claim("Likely prefers quiet evenings reading mystery novels.", ["0.2"], "preference"), "no_shared_topic"),
        (claim("Okafor (born 14 June 1979) is a Nigerian actress and film producer.", ["0.0"]), "supported"),
        (claim("Adaeze Okafor co-founded a plant-based food company.", ["0.2"]), "supported"),  # own name
        (claim("Prefers plant-based food and companies that sell it.", ["0.2"], "preference"), "supported"),
        (claim("Values animal welfare: campaigns against factory farming.", ["3.1"], "preference"), "supported"),
    ],
)
def test_claim_reasons(c, reason: str) -> None:
    assert verdict(c) == (reason == "supported", reason)


def test_preference_threshold_is_softer_than_background() -> None:
    text = "Likely enjoys cooking plant-based food for friends at home."
    assert verdict(claim(text, ["0.2"], "preference"))[0] is True
    assert verdict(claim(text, ["0.2"], "background")) == (False, "low_overlap")
    assert verdict(claim(text, ["0.2"], "preference"), preference_min_shared_words=4) == (False, "no_shared_topic")


def test_biography_is_the_authority_over_cited_sentences() -> None:
    """An id recorded in cited_sentences but absent from the revision in the context is missing."""
    from types import SimpleNamespace

    revision = {k: v for k, v in SENTENCES.items() if k != "0.2"}
    bio = SimpleNamespace(
        sentences=[SimpleNamespace(id=k, text=v) for k, v in revision.items()], infobox=None, title="Adaeze Okafor"
    )
    c = claim("Okafor co-founded a plant-based food company.", ["0.2"])
    other = claim("Okafor is a Nigerian actress and film producer.", ["0.0"], k=1)
    pref = claim("She follows a vegan diet and campaigns against factory farming.", ["3.1"], "preference", k=2)
    row = description([c, other, pref], SENTENCES)
    f = GroundingFilter(FiltersConfig(min_grounding_score=0.0))
    alone = asyncio.run(f.check(row, {}))
    assert [x.supported for x in alone.row.claims] == [True, True, True]
    with_bio = asyncio.run(f.check(row, {"biographies": {"ada-okafor": bio}}))
    assert [x.support_reason.split(":")[0] for x in with_bio.row.claims] == [
        "evidence_missing",
        "supported",
        "supported",
    ]


def test_unsupported_claims_removed_and_score_threshold() -> None:
    claims = [
        claim("Okafor is a Nigerian actress, film producer and entrepreneur.", ["0.0"], k=0),
        claim("Okafor co-founded Blue Kettle Foods in Lagos.", ["0.2"], k=1),
        claim("Okafor owns more than 300 vintage typewriters.", ["0.0"], k=2),
        claim("Prefers plant-based food and campaigns against factory farming.", ["3.1", "0.2"], "preference", k=3),
    ]
    row = description(claims, SENTENCES)
    kept = asyncio.run(GroundingFilter(FiltersConfig(min_grounding_score=0.7)).check(row, {}))
    assert kept.kept and kept.flags == ("claims_removed",)
    assert kept.row.grounding_score == 0.75
    assert [c.supported for c in kept.row.claims] == [True, True, False, True]
    assert "typewriters" not in kept.row.bio and "Blue Kettle" in kept.row.bio
    assert kept.row.preferences == claims[3].text
    dropped = asyncio.run(GroundingFilter(FiltersConfig()).check(row, {}))  # default threshold 0.9
    assert (dropped.kept, dropped.reason) == (False, "low_grounding")
    assert "c2 number_not_in_evidence" in dropped.detail
    again = asyncio.run(GroundingFilter(FiltersConfig(min_grounding_score=0.7)).check(kept.row, {}))
    assert again.row == kept.row  # idempotent: the stage filters kept rows again at the end


def test_no_supported_preference_drops() -> None:
    claims = [
        claim("Okafor is a Nigerian actress, film producer and entrepreneur.", ["0.0"], k=0),
        claim("Prefers opera and collects vintage typewriters.", ["0.0"], "preference", k=1),
    ]
    result = asyncio.run(
        GroundingFilter(FiltersConfig(min_grounding_score=0.5)).check(description(claims, SENTENCES), {})
    )
    assert (result.kept, result.reason) == (False, "no_supported_preference")


@pytest.fixture(scope="module")
def okafor():
    with DumpReader(DEMO_DUMP, DEMO_INDEX) as reader:
        return reader.get("Ada Okafor")  # a redirect: resolved to the article


def test_real_biography_correct_claim_kept_invented_dropped(okafor) -> None:
    assert okafor.title == "Adaeze Okafor"
    sent = okafor.sentence_map()
    correct = claim("She has appeared in more than 40 films, including The Salt Merchants (2016).", ["0.1"], k=0)
    invented = claim("Okafor won an Olympic gold medal in rowing in 1996.", ["0.1"], k=1)
    miscited = claim("Okafor co-founded Blue Kettle Foods, a plant-based food company in Lagos.", ["1.1"], k=2)
    pref = claim("Likely prefers plant-based food; known as an advocate of veganism.", ["0.2"], "preference", k=3)
    row = description([correct, invented, miscited, pref], {k: sent[k].text for k in ("0.1", "0.2", "1.1")})
    context = {
        "biographies": {"ada-okafor": okafor},
        "personas": {"ada-okafor": persona("ada-okafor", "Adaeze Okafor")},
    }
    result = asyncio.run(GroundingFilter(FiltersConfig(min_grounding_score=0.5)).check(row, context))
    verdicts = {c.claim_id[-2:]: (c.supported, c.support_reason.split(":")[0]) for c in result.row.claims}
    assert verdicts == {
        "c0": (True, "supported"),
        "c1": (False, "number_not_in_evidence"),
        "c2": (False, "name_not_in_evidence"),
        "c3": (True, "supported"),
    }
    assert result.row.grounding_score == 0.5
    # the infobox birth name counts as the persona's own name
    full = claim("Adaeze Chinyere Okafor is a Nigerian actress.", ["0.0"], k=0)
    row = description([full, pref], {"0.0": sent["0.0"].text, "0.2": sent["0.2"].text})
    assert asyncio.run(GroundingFilter(FiltersConfig()).check(row, context)).kept


def test_other_revision_means_no_evidence(okafor) -> None:
    """Sentence ids are stable within a revision only: citing another revision's ids proves nothing."""
    sent = okafor.sentence_map()
    c = claim("She has appeared in more than 40 films, including The Salt Merchants (2016).", ["0.1"])
    pref = claim("Likely prefers plant-based food; known as an advocate of veganism.", ["0.2"], "preference", k=1)
    row = description([c, pref], {"0.1": sent["0.1"].text, "0.2": sent["0.2"].text})
    context = {"biographies": {"ada-okafor": okafor}}
    same = row.model_copy(update={"wiki_revision_id": okafor.revision_id})
    other = row.model_copy(update={"wiki_revision_id": okafor.revision_id - 1})
    f = GroundingFilter(FiltersConfig(min_grounding_score=0.0))
    assert asyncio.run(f.check(same, context)).row.claims[0].supported is True
    result = asyncio.run(f.check(other, context))
    assert (result.kept, result.reason) == (False, "no_supported_background")
    assert "c0 evidence_missing" in result.detail and "c1 evidence_missing" in result.detail
    assert f.claim_counts["ada-okafor#s0"] == {"evidence_missing": 2}

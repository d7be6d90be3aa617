"""The Biography record: what every later stage knows about a person.

Sentence ids are the contract between the Wikipedia layer and the grounded descriptions: a claim
cites ids, and the verify filters look them up again, so ids must be stable for a given revision
(they depend only on the revision's text, never on scan order or parser run).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Sentence(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="Stable for a revision, e.g. '0.3' = 4th sentence of section 0 (the lead).")
    section: str = Field(description="Section title; 'Lead' for the lead.")
    text: str


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str
    text: str


class Infobox(BaseModel):
    model_config = ConfigDict(extra="forbid")

    template: str = Field(description="Normalised template name, e.g. 'infobox person'.")
    fields: dict[str, str] = Field(default_factory=dict, description="Field name -> clean visible text.")


class Biography(BaseModel):
    """One article as a citable record. Extra fields beyond the contract are allowed."""

    model_config = ConfigDict(extra="allow")

    page_id: int
    title: str
    revision_id: int | None = None
    url: str
    is_person: bool
    is_living: bool
    birth_date: str | None = None
    birth_year: int | None = None
    death_year: int | None = None
    short_description: str | None = None
    infobox: Infobox | None = None
    categories: list[str] = Field(default_factory=list)
    lead: str = ""
    sections: list[Section] = Field(default_factory=list)
    sentences: list[Sentence] = Field(default_factory=list)
    links: list[str] = Field(default_factory=list)

    def sentence_map(self) -> dict[str, Sentence]:
        """Sentence id -> sentence, for looking up cited evidence."""
        return {s.id: s for s in self.sentences}

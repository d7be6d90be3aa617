"""Stage 7, prefixes: ways to tell a model who is asking (as in the WikiPersonas paper), one row per persona.

- ``prefix_name``: the name only (relies on what the model knows about them);
- ``prefix_description``: the grounded description (claims the filters did not refute);
- ``prefix_inferred``: a persona written by the LLM from the persona's TRAIN pairs only (question,
  chosen, rejected; a seeded choice of ``inference_shots``), the paper's "persona from xy" setting;
- ``prefix_fewshot``: ``fewshot_shots`` TRAIN (question, chosen) pairs, seeded.

Test pairs are never shown to any prefix: a model evaluated on the test split must not have seen its
answers through the prefix.
"""

from __future__ import annotations

import time

from pydantic import BaseModel, Field

from wikipersona_data.stages.context import BuildContext
from wikipersona_data.stages.ids import content_id, rng_for
from wikipersona_data.stages.rows import DescriptionRow, PairRow, PersonaRow, PrefixRow, RejectRow

STAGE = "prefixes"
TAILOR = "Tailor the style, content, length, vocabulary, opinion and stance of your answer to them."
RESPOND = f"Respond to the following prompt from this person. {TAILOR}"


class InferredPersona(BaseModel):
    persona: str = Field(min_length=1)


def name_prefix(persona: PersonaRow) -> str:
    return f"Respond to the following prompt from {persona.name}. {TAILOR}"


def description_prefix(description: DescriptionRow | None) -> str:
    if description is None:
        return ""
    claims = [c for c in description.claims if c.supported is not False]
    background = " ".join(c.text for c in claims if c.kind == "background")
    preferences = " ".join(c.text for c in claims if c.kind == "preference")
    return (
        f"The person asking is described as follows.\nBackground: {background}\nPreferences: {preferences}\n"
        f"Respond to the following prompt from this person. {TAILOR}"
    )


def fewshot_prefix(shots: list[PairRow]) -> str:
    blocks = [f"Question: {s.prompt}\nPreferred response: {s.chosen}" for s in shots]
    return (
        "Here are questions this person asked and the responses they preferred.\n\n"
        + "\n\n".join(blocks)
        + f"\n\nRespond to the following prompt from this person. {TAILOR}"
    )


def choose(ctx: BuildContext, pairs: list[PairRow], n: int, *scope: str) -> list[PairRow]:
    ordered = sorted(pairs, key=lambda p: p.pair_id)
    return sorted(
        rng_for(ctx.recipe.seeds.prefixes, *scope).sample(ordered, min(n, len(ordered))), key=lambda p: p.pair_id
    )


async def prefix_one(
    ctx: BuildContext, persona: PersonaRow, description: DescriptionRow | None, train: list[PairRow]
) -> tuple[list[PrefixRow], list[RejectRow]]:
    pid = persona.persona_id
    assert all(p.split == "train" and p.persona_id == pid for p in train)
    if not train:
        return [], [RejectRow(stage=STAGE, id=pid, reason="no_train_pairs", detail="no train pairs to infer from")]
    counts = ctx.recipe.counts
    infer_shots = choose(ctx, train, counts.inference_shots, pid, "infer")
    values = {"shots": [{"question": s.prompt, "chosen": s.chosen, "rejected": s.rejected} for s in infer_shots]}
    res = await ctx.llm.json(STAGE, "prefixes_infer", values, InferredPersona)
    if not res.ok:
        reject = RejectRow(
            stage=STAGE, id=pid, reason="llm_failure", detail=res.failure or "", call_keys=res.provenance.call_keys
        )
        return [], [reject]
    few = choose(ctx, train, counts.fewshot_shots, pid, "fewshot")
    inferred = res.value.persona.strip()
    row = PrefixRow(
        persona_id=pid,
        prefix_name=name_prefix(persona),
        prefix_description=description_prefix(description),
        prefix_inferred=f"The person asking is described as follows.\n{inferred}\n{RESPOND}",
        prefix_fewshot=fewshot_prefix(few),
        inferred_from=[s.pair_id for s in infer_shots],
        fewshot_from=[s.pair_id for s in few],
        provenance=res.provenance,
    )
    return [row], []


async def run(
    ctx: BuildContext, personas: list[PersonaRow], descriptions: list[DescriptionRow], pairs: list[PairRow]
) -> list[PrefixRow]:
    started = time.monotonic()
    store = ctx.store(STAGE, PrefixRow, "persona_id")
    described = {d.persona_id: d for d in descriptions}
    train: dict[str, list[PairRow]] = {}
    for p in pairs:
        if p.split == "train":
            train.setdefault(p.persona_id, []).append(p)

    def unit(p: PersonaRow):
        return lambda: prefix_one(ctx, p, described.get(p.persona_id), train.get(p.persona_id, []))

    def key(p: PersonaRow) -> str:
        shown = sorted(x.pair_id for x in train.get(p.persona_id, []))
        return f"{p.persona_id}@{content_id(shown, description_prefix(described.get(p.persona_id)))}"

    rows, rejects = await ctx.run_units(STAGE, store, [(key(p), unit(p)) for p in personas])
    rows, dropped = await ctx.apply_filters(STAGE, rows, "persona_id")
    rejects += dropped
    store.write_output(rows, rejects)
    ctx.finish_stage(STAGE, len(rows), rejects, started)
    return sorted(rows, key=lambda r: r.persona_id)

"""Column contracts of the release (the README's "The release folder"), as pyarrow schemas.

Both the generation stages (which produce rows) and the release writer/verifier (which write and
re-check parquet) import these, so the published columns cannot drift from what is built. Columns
may be added here on purpose (a minor version); renaming or removing one is a major version.
"""

from __future__ import annotations

import pyarrow as pa

MESSAGE = pa.struct([("role", pa.string()), ("content", pa.string())])
MESSAGES = pa.list_(MESSAGE)

JUDGE_VOTE = pa.struct(
    [
        ("first", pa.string()),  # candidate id shown as (a)
        ("second", pa.string()),  # candidate id shown as (b)
        ("winner", pa.string()),  # candidate id, or "tie"
        ("rationale", pa.string()),
    ]
)

AXIS_MEMBERSHIP = pa.struct([("axis", pa.string()), ("category", pa.string())])

CLAIM = pa.struct(
    [
        ("kind", pa.string()),  # "background" | "preference"
        ("text", pa.string()),
        ("evidence", pa.list_(pa.string())),  # Biography sentence ids
        ("supported", pa.bool_()),
    ]
)

PAIRS = pa.schema(
    [
        ("pair_id", pa.string()),
        ("persona_id", pa.string()),
        ("persona", pa.string()),
        ("question_id", pa.string()),
        ("question_type", pa.string()),  # "personal" | "divergent"
        ("axis", pa.string()),  # null for personal questions
        ("category", pa.string()),  # the persona's category on `axis`; null for personal
        ("prompt", MESSAGES),  # [{role: user, content}]
        ("chosen", MESSAGES),  # [{role: assistant, content}]
        ("rejected", MESSAGES),
        ("chosen_id", pa.string()),  # candidate ids
        ("rejected_id", pa.string()),
        ("judge_agreement", pa.float64()),  # 0..1: share of both-order votes consistent with chosen
        ("judge_model", pa.string()),
        ("judge_votes", pa.list_(JUDGE_VOTE)),
        ("generator_model", pa.string()),
        ("persona_fold", pa.int32()),  # k-fold of personas (stratified by axis) for unseen-persona eval
    ]
)

REWARD_COLUMNS = [
    pa.field("chosen_reward", pa.float64()),  # reward-model score of chosen (recipes with a reward band only)
    pa.field("rejected_reward", pa.float64()),
]
PAIRS_WITH_REWARD = pa.schema([*PAIRS, *REWARD_COLUMNS])
"""The pairs of a build with the reward band (recipe ``[stages.reward]``): two columns more, at the end; a build
without the band has exactly PAIRS (its bytes do not change)."""

PERSONAS = pa.schema(
    [
        ("persona_id", pa.string()),
        ("name", pa.string()),
        ("wiki_title", pa.string()),
        ("wiki_page_id", pa.int64()),
        ("wiki_revision_id", pa.int64()),
        ("wiki_url", pa.string()),
        ("axes", pa.list_(AXIS_MEMBERSHIP)),
        ("bio", pa.string()),
        ("preferences", pa.string()),
        ("claims", pa.list_(CLAIM)),
        ("grounding_score", pa.float64()),
        ("persona_fold", pa.int32()),
        ("prefix_name", pa.string()),
        ("prefix_description", pa.string()),
        ("prefix_inferred", pa.string()),  # inferred from train pairs only
        ("prefix_fewshot", pa.string()),  # 2 train (question, chosen) shots
    ]
)

SPLITS = ("train", "test")

"""Synthetic but realistic release rows for the release/verify/publish tests.

Several personas on several axes, personal and divergent questions, a train/test split by
question (divergent questions are shared by every persona on their axis, so the split is by
question across personas, as the real builder must do), judge votes in both orders.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from wikipersona_data.release.manifest import Manifest

PERSONAS = [
    ("Ada Quill", "Ada_Quill", 101, {"diet": "vegan", "religion": "atheist"}),
    ("Bram Okafor", "Bram_Okafor", 102, {"diet": "omnivore", "religion": "christian"}),
    ("Chen Liwei", "Chen_Liwei", 103, {"diet": "vegan", "politics": "progressive"}),
    ("Dora Halvorsen", "Dora_Halvorsen", 104, {"religion": "christian", "politics": "conservative"}),
]
DIVERGENT = {
    "diet": ["What should I cook for a birthday dinner?", "Is cheese worth the fuss?", "Best protein sources?"],
    "religion": ["How should I spend Sunday morning?", "What gives life meaning?", "Should kids learn prayers?"],
    "politics": ["Should taxes on fuel rise?", "How do I choose a local school?", "Is rent control good?"],
}
PERSONAL_PER_PERSONA = 4


def _id(*parts: object) -> str:
    return hashlib.sha256("\x1f".join(map(str, parts)).encode()).hexdigest()[:16]


def persona_id(title: str, rev: int) -> str:
    return f"{title.lower()}@{rev}"


def _split_of(question_id: str) -> str:
    return "test" if int(question_id[:2], 16) % 4 == 0 else "train"


def _pair(pid: str, name: str, qid: str, qtype: str, axis: str | None, cat: str | None, question: str, n: int) -> dict:
    chosen = f"A thoughtful answer for {qtype} question {n}: " + "with details " * (3 + n % 5)
    rejected = f"A generic answer {n}. " + "filler " * (1 + n % 7)
    a, b = f"cand-{qid}-a", f"cand-{qid}-b"
    return {
        "pair_id": _id("pair", pid, qid),
        "persona_id": pid,
        "persona": name,
        "question_id": qid,
        "question_type": qtype,
        "axis": axis,
        "category": cat,
        "prompt": [{"role": "user", "content": question}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "chosen_id": a,
        "rejected_id": b,
        "judge_agreement": 1.0 if n % 3 else 0.5,
        "judge_model": "sim-judge",
        "judge_votes": [
            {"first": a, "second": b, "winner": a, "rationale": "fits the persona"},
            {"first": b, "second": a, "winner": a if n % 3 else "tie", "rationale": "same, other order"},
        ],
        "generator_model": "sim-writer",
        "persona_fold": n % 2,
    }


def make_rows() -> tuple[dict[str, list[dict]], list[dict]]:
    """Return ({"train": pairs, "test": pairs}, personas) in a deliberately unsorted order."""
    pairs: dict[str, list[dict]] = {"train": [], "test": []}
    personas = []
    n = 0
    for fold, (name, title, rev, axes) in enumerate(PERSONAS):
        pid = persona_id(title, rev)
        for i in range(PERSONAL_PER_PERSONA):
            qid = _id("personal", pid, i)
            topic = ["my next book tour", "a charity gala speech", "my morning routine", "a podcast invite"][i % 4]
            question = f"How should I prepare for {topic}, given my schedule this month (draft {fold}.{i})?"
            pairs[_split_of(qid)].append(_pair(pid, name, qid, "personal", None, None, question, n))
            n += 1
        for axis, category in sorted(axes.items()):
            for question in DIVERGENT[axis]:
                qid = _id("divergent", axis, question)
                pairs[_split_of(qid)].append(_pair(pid, name, qid, "divergent", axis, category, question, n))
                n += 1
        personas.append(
            {
                "persona_id": pid,
                "name": name,
                "wiki_title": title.replace("_", " "),
                "wiki_page_id": 9000 + rev,
                "wiki_revision_id": 1_200_000 + rev,
                "wiki_url": f"https://en.wikipedia.org/wiki/{title}",
                "axes": [{"axis": a, "category": c} for a, c in sorted(axes.items())],
                "bio": f"{name} is a fictional public figure used in tests.",
                "preferences": f"{name} prefers " + ", ".join(f"{c} choices" for c in axes.values()) + ".",
                "claims": [
                    {"kind": "background", "text": f"{name} is famous.", "evidence": ["s0", "s1"], "supported": True},
                    {"kind": "preference", "text": "Cares about food.", "evidence": ["s4"], "supported": fold != 2},
                ],
                "grounding_score": 1.0 if fold != 2 else 0.5,
                "persona_fold": fold % 2,
                "prefix_name": f"You are talking to {name}.",
                "prefix_description": f"The user is {name}, a public figure.",
                "prefix_inferred": "The user likes detailed answers.",
                "prefix_fewshot": "Q: example\nA: example",
            }
        )
    pairs["train"].reverse()  # the writer must sort
    return pairs, list(reversed(personas))


RECIPE_TEXT = (
    'name = "synthetic"\ndump = "demo/enwiki-demo.xml.bz2"\n[seeds]\nsplit = 13\n'
    '[endpoints.sim]\nprofile = "openai"\n'  # the endpoint the manifest declares (verify compares them)
)


def make_manifest(version: str = "1.0.0", **data_overrides) -> Manifest:
    data = {
        "name": "WikiPersona",
        "version": version,
        "recipe": {
            "name": "synthetic",
            "sha256": hashlib.sha256(RECIPE_TEXT.encode()).hexdigest(),
            "text": RECIPE_TEXT,
        },
        "dump": {"name": "enwiki-demo", "date": "2026-11-01"},
        "endpoints": [{"name": "sim", "profile": "openai", "base_url_redacted": "local"}],
        "models": {
            "respond": {"requested": "sim-writer", "served": ["sim-writer-2026-11"]},
            "judge": {"requested": "sim-judge", "served": ["sim-judge-2026-11"]},
        },
        "templates": {"judge.v1": "a" * 64, "respond.v1": "b" * 64},
        "seeds": {"split": 13, "judge_order": 7},
        "counts": {"questions": 52, "candidates": 104, "judgments": 104},
        "filter_report": {
            "questions": {"leak": {"kept": 50, "dropped": {"names_persona": 2}}},
            "judge": {"agreement": {"kept": 48, "dropped": {"order_disagrees": 3, "tie": 1}}},
        },
        "ledger": {
            "by_stage_model": [
                {
                    "stage": "judge",
                    "model": "sim-judge",
                    "calls": 104,
                    "input_tokens": 5000,
                    "output_tokens": 900,
                    "cost_usd": 0.25,
                },
                {
                    "stage": "respond",
                    "model": "sim-writer",
                    "calls": 156,
                    "input_tokens": 7000,
                    "output_tokens": 4100,
                    "cost_usd": 0.5,
                },
            ],
            "build": {"judge": {"mean_judge_agreement": 0.9, "votes": 208}, "grounding_method": "cited ids exist"},
        },
        "divergence": {"diet": 0.75, "religion": 0.5, "politics": 1.0},
        "changelog": [{"version": version, "date": "2026-11-26", "summary": "Synthetic test release."}],
        **data_overrides,
    }
    return Manifest.model_validate(
        {"data": data, "run": {"built_at": "2026-11-26T00:00:00Z", "wall_seconds": 1.5, "python": "3.11"}}
    )


def write_synthetic_release(out: Path, version: str = "1.0.0", **kwargs) -> Path:
    from wikipersona_data.release.writer import write_release

    pairs, personas = make_rows()
    return write_release(out, pairs=pairs, personas=personas, manifest=make_manifest(version), **kwargs)


@contextmanager
def offline_hub(cache: Path) -> Iterator[None]:
    """HF offline flags + a temp cache for the duration, so tests never touch ~/.cache or the network."""
    keys = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "HF_HOME": str(cache), "HF_DATASETS_CACHE": str(cache)}
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

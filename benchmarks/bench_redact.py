"""What redaction and the text-safety checks cost per row, measured side by side in one run.

Three places run on every row or reply (see ``wikipersona_data/redact.py`` and ``verify/safety.py``):

* the client's scrub hook on each reply body, before it is cached: vs ``json.loads`` of the same body;
* the stage store's scrubbed ``dumps`` (journals, rows, rejects): vs the plain canonical ``json.dumps``;
* the ``text_safety`` filter on a candidate answer row (secrets, unsafe characters, prompt injection):
  vs the respond stage's other row filters together (empty, length, refusal, truncation, leaks).

A 51-character API key is in the environment (as with a real endpoint), so the fragment checks run.
Rows are clean, like the demo's: this is the price every build pays, not the price of an attack.

Figures on the 2-core machine (two runs, 2,000 rows of ~625 characters): the scrub hook adds 20 us per
reply (json.loads 5.3-5.5 us -> 25.0-25.2 us, x4.6-4.7; the client spends ~1 ms of CPU per call, so
about +2 %); scrubbed dumps 33-34 us vs 10 us (x3.4); text_safety 65 us per candidate row, 0.39-0.40 x
the respond stage's other row filters (163-166 us), so x1.4 for all row filters of that stage.

Usage: ``python benchmarks/bench_redact.py [--rows 2000] [--repeat 5]``. Prints seconds per row and
ratios; the best of ``--repeat`` runs of each is kept.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import string
import time
from collections.abc import Callable
from typing import Any

_VOCABULARY = (
    "garden market bread morning quiet recipe plan budget travel river family weekend music season "
    "coffee walk library city friends cooking lentils fish tradition prayer community vote energy "
    "phone privacy data careful simple slow local fresh honest practical steady warm"
)
WORDS = _VOCABULARY.split()


def sentence(rng: random.Random) -> str:
    words = [rng.choice(WORDS) for _ in range(rng.randint(8, 18))]
    return " ".join(words).capitalize() + "."


def answer(rng: random.Random) -> str:
    return " ".join(sentence(rng) for _ in range(rng.randint(5, 9)))


def best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    os.environ["BENCH_REDACT_KEY"] = "sk-" + "".join(secrets.choice(string.ascii_letters) for _ in range(48))
    from wikipersona_data import redact
    from wikipersona_data.llm.client import _without_secrets
    from wikipersona_data.stages.rows import CandidateRow, Provenance
    from wikipersona_data.stages.store import dumps
    from wikipersona_data.verify.answers import (
        AnswerEmptyFilter,
        AnswerLeakFilter,
        AnswerLengthFilter,
        RefusalFilter,
        TruncationFilter,
    )
    from wikipersona_data.verify.config import FiltersConfig
    from wikipersona_data.verify.safety import TextSafetyFilter

    redact.register_key_variable("BENCH_REDACT_KEY")
    rng = random.Random(0)
    texts = [answer(rng) for _ in range(args.rows)]
    bodies = [
        json.dumps(
            {
                "id": f"chatcmpl-{i}",
                "object": "chat.completion",
                "model": "m",
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": json.dumps({"answer": t})},
                    }
                ],
                "usage": {"prompt_tokens": 300, "completion_tokens": 150, "total_tokens": 450},
            }
        ).encode()
        for i, t in enumerate(texts)
    ]
    prov = Provenance(
        endpoint="e", model="m", call_keys=["a" * 64, "b" * 64], template="respond.md", template_sha256="c" * 64
    )
    rows = [
        CandidateRow(
            candidate_id=f"{i:016x}",
            question_id="q" * 16,
            k=i % 6,
            axis="diet",
            category="vegan",
            text=t,
            kept=False,
            selection_rank=None,
            selection_reason="pending",
            provenance=prov,
        )
        for i, t in enumerate(texts)
    ]
    n = len(rows)

    parse = best(lambda: [json.loads(b) for b in bodies], args.repeat)
    parse_scrub = best(lambda: [_without_secrets(json.loads(b), b) for b in bodies], args.repeat)

    def plain_dumps() -> None:
        for r in rows:
            json.dumps(r.model_dump(mode="json"), sort_keys=True, ensure_ascii=False, separators=(",", ":"))

    plain = best(plain_dumps, args.repeat)
    scrubbed = best(lambda: [dumps(r) for r in rows], args.repeat)

    cfg = FiltersConfig()
    others = [AnswerEmptyFilter(), AnswerLengthFilter(cfg), RefusalFilter(), TruncationFilter()]
    leak = AnswerLeakFilter(cfg)
    leak.names, leak.any_name = [], None  # no personas: the category patterns still run
    safety = TextSafetyFilter()
    context: dict[str, Any] = {"recipe": None}

    def run_others() -> None:
        for r in rows:
            for f in others:
                f.check(r, context)
            leak.check(r, context)

    filters = best(run_others, args.repeat)
    safety_time = best(lambda: [safety.check(r, context) for r in rows], args.repeat)

    print(
        f"rows/replies: {n} (answers of {sum(len(t) for t in texts) // n} characters on average), best of {args.repeat}"
    )
    us = lambda seconds: f"{seconds / n * 1e6:7.1f} us"  # noqa: E731
    print(f"reply: json.loads {us(parse)}, + scrub hook {us(parse_scrub)}  -> x{parse_scrub / parse:.2f}")
    print(f"store: json.dumps {us(plain)}, scrubbed dumps {us(scrubbed)}  -> x{scrubbed / plain:.2f}")
    print(
        f"filters: respond's row filters {us(filters)}, text_safety {us(safety_time)}  -> text_safety = "
        f"{safety_time / filters:.2f} x the others (all row filters x{(filters + safety_time) / filters:.2f})"
    )


if __name__ == "__main__":
    main()

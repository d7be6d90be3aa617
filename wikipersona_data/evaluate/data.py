"""The release as evaluate reads it: verified rows, and the build's recipe with endpoints from the user.

The rows come through ``release/audit.py``'s loader (the release must pass ``verify``, so its files are the
ones its manifest hashes). The judge's settings (model, temperature, max_tokens, seed, persona view, both
orders, ties) are the build's, from the recipe text in the manifest; where its calls go and with which key
come from the user only (``release/trust.py``: ``--recipe FILE``, else the demo's simulator), exactly as for
``extend``. The judge's prompt template is the package's; if it differs from the one the release recorded,
the run says so (the figures then come from another judge prompt than the build's).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wikipersona_data.errors import InputError
from wikipersona_data.release import manifest as mf
from wikipersona_data.stages.recipe import Recipe, parse_recipe
from wikipersona_data.stages.templates import load_template


@dataclass(frozen=True)
class CardClaim:
    """A release claim as the judge stage's ``persona_card`` reads a description's claims."""

    kind: str
    text: str
    supported: bool | None


@dataclass(frozen=True)
class CardDescription:
    claims: list[CardClaim]


@dataclass(frozen=True)
class CardPersona:
    """What the judge stage reads of a persona: its id (tie-break seed) and name."""

    persona_id: str
    name: str


@dataclass
class EvalRelease:
    path: Path
    manifest: mf.Manifest
    recipe: Recipe
    test_pairs: list[dict[str, Any]]
    personas: dict[str, dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def description(self, persona_id: str) -> CardDescription:
        claims = self.personas[persona_id].get("claims") or []
        return CardDescription([CardClaim(c["kind"], c["text"], c.get("supported")) for c in claims])

    def card_persona(self, persona_id: str) -> CardPersona:
        return CardPersona(persona_id, self.personas[persona_id]["name"])

    def judge_template(self) -> dict[str, Any]:
        """The judge template the release recorded vs the one used now."""
        used = load_template("judge")
        recorded = self.manifest.data.templates.get(used.name)
        return {
            "file": used.name,
            "release_sha256": recorded,
            "used_sha256": used.sha256,
            "same": recorded == used.sha256,
        }


def load_release(release: Path, user_recipe: Path | None) -> EvalRelease:
    """Verified rows + the trusted recipe (one-line errors for a release that fails verify or a bad recipe)."""
    from wikipersona_data.release.audit import load_verified
    from wikipersona_data.release.trust import trusted_recipe

    release = Path(release)
    if not (release / "manifest.json").is_file():
        raise InputError(f"{release}: no manifest.json (not a release folder?)")
    manifest, pairs, personas = load_verified(release)
    recipe = parse_recipe(manifest.data.recipe.text, release / "manifest.json")
    if recipe.sha256 != manifest.data.recipe.sha256:
        raise InputError(f"{release / 'manifest.json'}: recipe.text does not match recipe.sha256")
    recipe, notes = trusted_recipe(recipe, user_recipe, dump_given=True)  # evaluate reads no dump
    notes = [n.replace("extend:", "evaluate:", 1) for n in notes]
    out = EvalRelease(
        path=release,
        manifest=manifest,
        recipe=recipe,
        test_pairs=sorted(pairs["test"], key=lambda r: r["pair_id"]),
        personas={p["persona_id"]: p for p in personas},
        notes=notes,
    )
    if not out.test_pairs:
        raise InputError(f"{release}: the test split is empty; nothing to evaluate")
    template = out.judge_template()
    if not template["same"]:
        out.notes.append(
            f"note: the package's {template['file']} (sha256 {template['used_sha256'][:12]}) differs from the one the "
            f"release was built with ({str(template['release_sha256'])[:12]}): the judge's figures come from "
            "another prompt than the build's"
        )
    return out

"""The simulator reads a request by its declared schema name (issue 12, item 5): every real template is rendered,
its variables are read back the way the stage responders read them, and it is sent to the simulator.

A template edit that rewords prose is followed by the simulator (its markers come from the template file); a
renamed or removed variable fails here instead of silently turning the simulator's answers generic.
"""

from __future__ import annotations

import httpx2

from wikipersona_data.evaluate.accuracy import load_eval_template
from wikipersona_data.llm.sim import SimConfig, SimServer
from wikipersona_data.llm.sim.template_fields import TEMPLATE_DIRS, field, line_values, region, rest_of_line, shown
from wikipersona_data.llm.sim.textgen import user_text
from wikipersona_data.stages.templates import Template, load_template
from wikipersona_data.verify.grounding import entailment_template

SENTENCES = [{"id": "0.1", "text": "Ada Quill is a chef."}, {"id": "2.3", "text": "She has eaten vegan since 2009."}]
MEMBERS = [{"axis": "diet", "category": "vegan"}, {"axis": "religion", "category": "Buddhist"}]
VALUES: dict[str, dict] = {
    "personas_candidates": {"axis": "diet", "n": 5, "category": "vegan"},
    "personas_evidence": {"title": "Ada Quill", "sentences": SENTENCES, "name": "Ada Quill", "category": "vegan",
                          "axis": "diet"},
    "describe": {"title": "Ada Quill", "sentences": SENTENCES, "name": "Ada Quill", "memberships": MEMBERS,
                 "min_claims": 4, "max_claims": 8, "claim_words": 30},
    "questions_personal": {"name": "Ada Quill", "claims": ["Ada Quill runs a vegan bistro.", "She rows at dawn."],
                           "memberships": MEMBERS, "n": 7, "question_words": 30, "batch": 2, "focus": "hobbies"},
    "questions_divergent": {"axis": "diet", "members": [{"name": "A", "category": "vegan"}],
                            "categories": ["vegan", "keto"], "n": 6, "question_words": 30, "batch": 1,
                            "focus": "cooking"},
    "respond_categories": {"question": "What should I cook tonight?", "n_min": 2, "n_max": 4,
                           "axes": [{"name": "diet", "categories": ["vegan", "keto"]}]},
    "respond": {"category": "vegan", "axis": "diet", "variant": 2, "style": "detailed and warm",
                "question": "What should I cook tonight?"},
    "judge": {"name": "Ada Quill", "background": ["Ada Quill is a chef."], "preferences": ["She eats vegan."],
              "question": "What should I cook tonight?", "answer_a": "A lentil stew.\n- with herbs",
              "answer_b": "A steak.", "allow_ties": True},
    "prefixes_infer": {"shots": [{"question": "What to cook?", "chosen": "Lentils.", "rejected": "Steak."}]},
    "entailment": {"evidence": [("2.3", "She has eaten vegan since 2009.")], "kind": "preference",
                   "claim": "Ada Quill prefers vegan food."},
    "preference": {"context": "The person asking is described as follows.\nBackground: a vegan chef.",
                   "question": "What should I cook tonight?", "answer_a": "A lentil stew.\n- with herbs",
                   "answer_b": "A steak.", "allow_ties": True},
}  # fmt: skip


def _template(name: str) -> Template:
    if name == "preference":
        return load_eval_template(name)
    return entailment_template() if name == "entailment" else load_template(name)


def _user(name: str) -> str:
    """The user messages as the simulator's responders read them (a prompt may have several)."""
    return user_text(_template(name).render(**VALUES[name]))


def test_every_template_has_sample_values() -> None:
    names = {p.stem for folder in TEMPLATE_DIRS for p in folder.glob("*.md")}
    assert names == set(VALUES)


def test_the_variables_responders_read_come_back_from_the_rendered_prompt() -> None:
    for name, expr in [
        ("personas_candidates", "category"),
        ("personas_evidence", "category"),
        ("describe", "name"),
        ("questions_divergent", "axis"),
        ("respond_categories", "question"),
        ("respond", "category"),
        ("respond", "style"),
        ("respond", "question"),
        ("judge", "question"),
        ("judge", "answer_a"),
        ("judge", "answer_b"),
        ("preference", "question"),
        ("preference", "answer_a"),
        ("preference", "answer_b"),
    ]:
        assert field(_user(name), name, expr) == str(VALUES[name][expr]), (name, expr)
    assert field(_user("questions_personal"), "questions_personal", "name") == "Ada Quill"
    for name in ("questions_personal", "questions_divergent"):
        assert field(_user(name), name, "n") == str(VALUES[name]["n"])
        assert field(_user(name), name, "batch + 1") == str(VALUES[name]["batch"] + 1)
    claims = region(_user("questions_personal"), "questions_personal", "c", "n")
    assert line_values(claims, "questions_personal", "c") == VALUES["questions_personal"]["claims"]
    assert rest_of_line(_user("describe"), "describe", "m.axis").startswith("diet (vegan), religion (Buddhist)")
    for name in ("describe", "personas_evidence"):
        assert line_values(_user(name), name, "s.id") == [(s["id"], s["text"]) for s in SENTENCES]
    card = region(_user("judge"), "judge", "name", "question")
    assert "Ada Quill" in card and "She eats vegan." in card and "They asked" not in card
    assert shown(_user("judge"), "judge", "allow_ties")
    no_ties = _template("judge").render(**{**VALUES["judge"], "allow_ties": False})[-1]["content"]
    assert not shown(no_ties, "judge", "allow_ties")
    assert line_values(_user("respond_categories"), "respond_categories", "a.name") == [("diet", "vegan, keto")]
    prefixes = _user("prefixes_infer")
    assert line_values(prefixes, "prefixes_infer", "s.chosen") == ["Lentils."]
    assert line_values(prefixes, "prefixes_infer", "s.question") == [("1", "What to cook?")]
    assert VALUES["preference"]["context"] in field(_user("preference"), "preference", "context")
    assert shown(_user("preference"), "preference", "allow_ties")
    entail = _user("entailment")
    assert line_values(entail, "entailment", "claim") == [("preference", "Ada Quill prefers vegan food.")]


def test_every_rendered_template_is_answered_by_its_responder() -> None:
    with SimServer(SimConfig(seed=0)) as sim:
        for name in VALUES:
            messages = _template(name).render(**VALUES[name])
            body = {
                "model": "sim-large",
                "messages": messages,
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": name, "schema": {"type": "object"}, "strict": True},
                },
            }
            reply = httpx2.post(f"{sim.base_url}/chat/completions", json=body, timeout=10)
            assert reply.status_code == 200, (name, reply.text)
            assert reply.json()["choices"][0]["message"]["content"].startswith("{"), name
        stats = sim.stats()
    assert stats["by_schema"] == {name: 1 for name in VALUES}
    assert stats["responder_errors"] == stats["responder_fallbacks"] == 0

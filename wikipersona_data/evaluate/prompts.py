"""The prefix modes (how a model is told who is asking) and the messages a policy is sent for each.

The modes are the paper's (method.md A11) as the release ships them (``personas`` columns): ``none`` (the
question alone), ``name``, ``description`` (the grounded description), ``inferred`` (a persona inferred from
the persona's train pairs only) and ``fewshot`` (train question / preferred answer shots). As the dataset card
says, a prefix goes in as a system message before the question; ``none`` sends the question alone.
"""

from __future__ import annotations

from typing import Any

from wikipersona_data.errors import ConfigError, InputError

PREFIX_MODES: tuple[str, ...] = ("none", "name", "description", "inferred", "fewshot")


def parse_modes(text: str) -> tuple[str, ...]:
    """``none,name,...`` -> the modes in the order given (duplicates dropped); one line naming a bad one."""
    modes: list[str] = []
    for part in text.split(","):
        mode = part.strip()
        if not mode:
            continue
        if mode not in PREFIX_MODES:
            raise ConfigError(f"--prefix {mode!r}: unknown prefix mode (choose from {', '.join(PREFIX_MODES)})")
        if mode not in modes:
            modes.append(mode)
    if not modes:
        raise ConfigError(f"--prefix: give at least one of {', '.join(PREFIX_MODES)}")
    return tuple(modes)


def prefix_text(persona: dict[str, Any], mode: str) -> str | None:
    """The persona's prefix for ``mode`` (None for ``none``)."""
    if mode == "none":
        return None
    return persona.get(f"prefix_{mode}")


def check_prefixes(personas: dict[str, dict[str, Any]], persona_ids: set[str], modes: tuple[str, ...]) -> None:
    """Every evaluated persona has a non-empty prefix for every mode asked (else one line naming the first gap)."""
    for pid in sorted(persona_ids):
        persona = personas.get(pid)
        if persona is None:
            raise InputError(f"test pairs name persona {pid!r}, which the personas config does not have")
        for mode in modes:
            if mode != "none" and not (prefix_text(persona, mode) or "").strip():
                raise InputError(f"persona {pid!r} has no prefix_{mode} in the release; leave {mode!r} out of --prefix")


def question_text(pair: dict[str, Any]) -> str:
    return "\n".join(m["content"] for m in pair["prompt"] if m.get("role") == "user")


def answer_text(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m["content"] for m in messages)


def messages_for(pair: dict[str, Any], persona: dict[str, Any], mode: str) -> list[dict[str, str]]:
    """What the policy is sent: the prefix as a system message (unless ``none``), then the pair's prompt."""
    prefix = prefix_text(persona, mode)
    head = [{"role": "system", "content": prefix}] if prefix else []
    return head + [{"role": m["role"], "content": m["content"]} for m in pair["prompt"]]

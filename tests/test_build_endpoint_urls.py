"""``build --endpoint-url NAME=URL``: one URL per recipe endpoint (e.g. llm-local's chat and embeddings servers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wikipersona_data.cli import main
from wikipersona_data.errors import ConfigError
from wikipersona_data.stages.commands import parse_endpoint_urls
from wikipersona_data.stages.pipeline import endpoint_configs
from wikipersona_data.stages.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]
LOCAL = ROOT / "builders" / "local.toml"


def test_each_endpoint_gets_its_own_url_and_wins_over_base_url(monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    recipe = load_recipe(LOCAL)
    urls = {"chat": "http://127.0.0.1:1111/v1", "embed": "http://127.0.0.1:2222/v1"}
    configs = endpoint_configs(recipe, None, None, urls)
    assert {name: c.base_url for name, c in configs.items()} == urls
    configs = endpoint_configs(recipe, "http://127.0.0.1:3333/v1", None, {"embed": urls["embed"]})
    assert configs["chat"].base_url == "http://127.0.0.1:3333/v1"
    assert configs["embed"].base_url == urls["embed"]


def test_an_endpoint_left_without_url_is_named(monkeypatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    recipe = load_recipe(LOCAL)
    with pytest.raises(ConfigError, match=r"endpoints\.embed\.base_url: empty"):
        endpoint_configs(recipe, None, None, {"chat": "http://127.0.0.1:1111/v1"})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (("chat",), "expected NAME=URL"),
        (("chat=",), "expected NAME=URL"),
        (("=http://x",), "expected NAME=URL"),
        (("chat=http://a", "chat=http://b"), "chat: given twice"),
    ],
)
def test_malformed_endpoint_urls_are_one_line_errors(values: tuple[str, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_endpoint_urls(values)


def test_unknown_endpoint_name_fails_before_any_work(tmp_path: Path, capsys) -> None:
    code = main(["build", str(LOCAL), "--work", str(tmp_path / "w"), "--endpoint-url", "chatt=http://127.0.0.1:9/v1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "has no endpoint 'chatt' (has: chat, embed)" in err and err.count("\n") == 1
    assert not (tmp_path / "w").exists()

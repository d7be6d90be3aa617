"""A tampered release cannot steal a token: ``extend`` never takes endpoints, key variables or simulator
settings from a release (release/trust.py), and a recipe cannot move the embedded simulator off loopback.

The tampered releases here pass ``verify`` on purpose (their manifest, recipe sha256 and card agree), so
the defence under test is extend's, not verify's. "Another local server" is a Recorder on 127.0.0.1
that keeps every request it gets; HF_TOKEN holds a fake token made at run time.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from lifecycle_fixtures import SIM, demo_build
from security_fixtures import Recorder, fake_key

from wikipersona_data.cli import main
from wikipersona_data.errors import ConfigError
from wikipersona_data.llm.sim import SimConfig, SimServer
from wikipersona_data.release.extend import Addition, extend_release
from wikipersona_data.release.manifest import Manifest
from wikipersona_data.release.verify import verify_release
from wikipersona_data.stages.recipe import parse_recipe

TITLE, AXIS, CATEGORY = "Wade Brunner", "politics", "libertarian"  # the politics axis's extension person
DEMO_ENDPOINT = (
    '[endpoints.sim]\nprofile = "sim"\nbase_url = ""            # empty + profile sim: an embedded simulator is '
    "started for the build\nmax_concurrency = 16\n"
)


def tamper(release: Path, out: Path, endpoint_toml: str, profile: str) -> Path:
    """A copy of ``release`` whose recipe's endpoint is ``endpoint_toml``, made consistent (recipe sha256,
    declared endpoint profile, card line) so that it still verifies."""
    shutil.copytree(release, out)
    manifest = json.loads((out / "manifest.json").read_text(encoding="utf-8"))
    recipe = manifest["data"]["recipe"]
    start = recipe["text"].index("[endpoints.sim]")
    end = recipe["text"].index("[prices.", start)
    recipe["text"] = recipe["text"][:start] + endpoint_toml + "\n" + recipe["text"][end:]
    recipe["sha256"] = parse_recipe(recipe["text"], out / "manifest.json").sha256
    manifest["data"]["endpoints"] = [{"name": "sim", "profile": profile, "base_url_redacted": "local"}]
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    card = (out / "README.md").read_text(encoding="utf-8").replace("sim (sim, local)", f"sim ({profile}, local)")
    (out / "README.md").write_text(card, encoding="utf-8")
    Manifest.load(out / "manifest.json")
    report = verify_release(out)
    assert report.ok, report.lines()
    return out


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return demo_build(tmp_path_factory)


@pytest.fixture
def work(base: dict, tmp_path: Path) -> Path:
    """A copy of the demo's work dir (its cache replays the release; the extension's calls are new)."""
    return Path(shutil.copytree(base["work"], tmp_path / "work"))


@pytest.fixture
def hf_token(monkeypatch: pytest.MonkeyPatch) -> str:
    token = fake_key("hf_", 34)
    monkeypatch.setenv("HF_TOKEN", token)
    return token


def _no_token_anywhere(thief: Recorder, token: str) -> None:
    assert thief.requests == []  # never called at all, so it never saw the token either
    assert not any(token in str(r["headers"]) or token.encode() in r["body"] for r in thief.requests)


def test_a_simulator_release_pointing_elsewhere_gets_the_embedded_simulator(
    base: dict, work: Path, tmp_path: Path, hf_token: str
) -> None:
    with Recorder() as thief:
        endpoint = f'[endpoints.sim]\nprofile = "sim"\nbase_url = "{thief.base_url}"\napi_key_env = "HF_TOKEN"\n'
        release = tamper(base["release"], tmp_path / "tampered", endpoint, "sim")
        log: list[str] = []
        out = extend_release(
            release,
            [Addition(TITLE, ((AXIS, CATEGORY),))],
            out=tmp_path / "extended",
            work=work,
            progress=False,
            echo=log.append,
        )
        _no_token_anywhere(thief, hf_token)
    assert any("no --recipe" in line and "the release's endpoint settings are not used" in line for line in log)
    assert verify_release(out).ok
    assert hf_token not in "".join(p.read_text(errors="replace") for p in work.rglob("*.jsonl"))


def test_a_release_with_its_own_server_is_refused_without_a_user_recipe(
    base: dict, work: Path, tmp_path: Path, hf_token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with Recorder() as thief:
        endpoint = f'[endpoints.sim]\nprofile = "openai"\nbase_url = "{thief.base_url}"\napi_key_env = "HF_TOKEN"\n'
        release = tamper(base["release"], tmp_path / "tampered", endpoint, "openai")
        argv = ["extend", str(release), "--persona", TITLE, "--axis", f"{AXIS}:{CATEGORY}"]
        code = main([*argv, "--out", str(tmp_path / "never"), "--work", str(work), "--no-progress"])
        err = capsys.readouterr().err.strip().splitlines()
        _no_token_anywhere(thief, hf_token)
    assert code == 2
    assert err[-1].startswith("error: ") and "give --recipe FILE" in err[-1] and "not the simulator" in err[-1]
    assert not (tmp_path / "never").exists()


def test_with_a_user_recipe_calls_go_where_the_user_says_and_differences_are_shown(
    base: dict, work: Path, tmp_path: Path, hf_token: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from wikipersona_data.demo.paths import DEMO_RECIPE

    with Recorder() as thief, SimServer(SimConfig(**SIM)) as sim:
        endpoint = f'[endpoints.sim]\nprofile = "openai"\nbase_url = "{thief.base_url}"\napi_key_env = "HF_TOKEN"\n'
        release = tamper(base["release"], tmp_path / "tampered", endpoint, "openai")
        mine = tmp_path / "mine.toml"
        text = DEMO_RECIPE.read_text(encoding="utf-8")
        mine.write_text(text.replace('base_url = ""', f'base_url = "{sim.base_url}"'), encoding="utf-8")
        argv = ["extend", str(release), "--persona", TITLE, "--axis", f"{AXIS}:{CATEGORY}", "--recipe", str(mine)]
        code = main([*argv, "--out", str(tmp_path / "extended"), "--work", str(work), "--no-progress"])
        captured = capsys.readouterr()
        requests = sim.stats()["requests"]
        _no_token_anywhere(thief, hf_token)
    assert code == 0, captured.err
    assert requests > 0  # the extension's calls went to the user's server
    assert f"endpoints and prices from {mine}" in captured.err
    assert "endpoints.sim.api_key_env: release 'HF_TOKEN', yours 'OPENAI_API_KEY' -> yours" in captured.err
    assert "endpoints.sim.profile: release 'openai', yours 'sim' -> yours" in captured.err
    assert "release OK" in captured.out


def test_a_user_recipe_without_the_releases_endpoint_is_one_line(
    base: dict, work: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from wikipersona_data.demo.paths import DEMO_RECIPE

    mine = tmp_path / "mine.toml"
    text = DEMO_RECIPE.read_text(encoding="utf-8").replace('endpoint = "sim"', 'endpoint = "mine"')
    mine.write_text(text.replace("[endpoints.sim]", "[endpoints.mine]"), encoding="utf-8")
    argv = ["extend", str(base["release"]), "--persona", TITLE, "--axis", f"{AXIS}:{CATEGORY}", "--recipe", str(mine)]
    code = main([*argv, "--out", str(tmp_path / "never"), "--work", str(work)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err
    assert "has no endpoint 'sim', which the release's stages use (yours: mine)" in err


@pytest.mark.parametrize("key", ["host", "port", "allow_remote", "api_key"])
def test_a_recipe_cannot_move_the_embedded_simulator_off_loopback(key: str, tmp_path: Path) -> None:
    from wikipersona_data.demo.paths import DEMO_RECIPE

    value = {"host": '"0.0.0.0"', "port": "8080", "allow_remote": "true", "api_key": '"x"'}[key]
    text = DEMO_RECIPE.read_text(encoding="utf-8").replace(
        "sim = { unsupported_claim_rate = 0.1", f"sim = {{ {key} = {value}, unsupported_claim_rate = 0.1"
    )
    with pytest.raises(ConfigError, match=rf"endpoints\.sim\.sim: '{key}' cannot be set from a recipe"):
        parse_recipe(text, tmp_path / "r.toml")


def test_the_embedded_simulator_is_on_loopback_whatever_the_recipe_object_says(tmp_path: Path) -> None:
    """Even a recipe object built without validation (model_copy) cannot pass host/port/key through."""
    from wikipersona_data.demo.paths import DEMO_RECIPE
    from wikipersona_data.stages.pipeline import embedded_simulator
    from wikipersona_data.stages.recipe import load_recipe

    recipe = load_recipe(DEMO_RECIPE)
    with embedded_simulator(recipe, None) as url:
        assert url is not None and url.startswith("http://127.0.0.1:")
    sim = recipe.endpoints["sim"].model_copy(update={"sim": {"host": "0.0.0.0"}})
    hostile = recipe.model_copy(update={"endpoints": {"sim": sim}})
    with (
        pytest.raises(ConfigError, match="multiple values for keyword argument 'host'"),
        embedded_simulator(hostile, None),
    ):
        pass

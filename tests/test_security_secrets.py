"""Credentials echoed back never land in data: redact.py, the client's scrub hook, the stores, the
text-safety filter, verify's scan of every cell, and --base-url with userinfo.

The hostile endpoint is a proxy in front of llm-sim that writes the bearer key it was sent (whole, masked
as ``sk-XXXXX****abcd``, or a fragment) into some answers; or a server whose error bodies echo a masked
key. Keys are made at run time.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from lifecycle_fixtures import DEMO, SIM
from security_fixtures import Recorder, RewritingProxy, fake_key

from wikipersona_data.cli import main
from wikipersona_data.llm.cache import CallCache
from wikipersona_data.llm.client import LLMClient
from wikipersona_data.llm.config import EndpointConfig
from wikipersona_data.llm.sim import SimConfig, SimServer
from wikipersona_data.redact import MARKER, Redactor
from wikipersona_data.release.verify import verify_release
from wikipersona_data.stages.pipeline import build_recipe


def masked(key: str) -> str:
    return f"{key[:8]}****{key[-4:]}"


# ------------------------------------------------------------------------------------------ redact.py


def test_redactor_removes_the_key_its_fragments_masked_forms_and_key_shapes() -> None:
    key = fake_key("sk-", 40)
    r = Redactor([key])
    for text in (
        f"echo {key} back",
        f"Incorrect API key provided: {masked(key)}.",
        f"key ****{key[-4:]} and more",
        f"the middle {key[10:22]} of it",
        f"someone's {fake_key('hf_', 34)} token",
        f"Authorization: Bearer {fake_key('', 30)}",
        "see https://user:hunter2pass@example.org/v1",
    ):
        clean = r.scrub(text)
        assert MARKER in clean and r.find(text) is not None, text
        assert key not in clean and key[-4:] + " " not in clean.replace(MARKER, "")
        assert "hunter2pass" not in clean
    for text in ("Bearer instruments are old.", "A **bold** claim... and more", "sk-no-key-required"):
        assert r.scrub(text) == text and r.find(text) is None
    short = Redactor(["EMPTY"])  # a local server's placeholder key is not a secret: text keeps the word
    assert short.scrub("an EMPTY room") == "an EMPTY room"


# ------------------------------------------------------------------------------------------ a hostile endpoint


def _echo_key(content: str, request: dict[str, Any], authorization: str) -> str:
    """Some respond answers carry the bearer key: whole, masked or a fragment (by the reply's hash)."""
    schema = ((request.get("response_format") or {}).get("json_schema") or {}).get("name")
    if schema != "respond":
        return content
    key = authorization.removeprefix("Bearer ")
    pick = int(hashlib.sha256(content.encode()).hexdigest(), 16) % 6
    if pick > 2:
        return content
    leak = [key, masked(key), key[6:20]][pick]
    data = json.loads(content)
    data["answer"] = f"{data['answer']} (request signed with {leak})"
    return json.dumps(data)


@pytest.fixture(scope="module")
def echoed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("echo")
    key = fake_key("sk-", 40)
    mp = pytest.MonkeyPatch()
    mp.setenv("OPENAI_API_KEY", key)  # the demo endpoint's api_key_env: sent as the bearer key
    try:
        with SimServer(SimConfig(**SIM)) as sim, RewritingProxy(sim.base_url, _echo_key) as proxy:
            release = build_recipe(
                DEMO, work_dir=root / "work", out_dir=root / "release", base_url=proxy.base_url, progress=False,
                echo=lambda _m: None,
            )  # fmt: skip
            rewritten = proxy.rewritten
    finally:
        mp.undo()
    return {"key": key, "work": root / "work", "release": release, "rewritten": rewritten}


def test_an_echoed_key_reaches_no_file_and_no_row(echoed: dict[str, Any]) -> None:
    key = echoed["key"]
    assert echoed["rewritten"] > 0
    needles = [key.encode(), masked(key).encode(), key[6:20].encode(), key[-12:].encode()]
    for root in (echoed["work"], echoed["release"]):
        for path in root.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert not any(n in data for n in needles), path
    cached = b"".join(p.read_bytes() for p in (echoed["work"] / "cache" / "calls").glob("*.jsonl"))
    assert MARKER.encode() in cached  # the replies were scrubbed before they were cached
    rejects = [json.loads(line) for line in (echoed["work"] / "respond" / "rejects.jsonl").read_text().splitlines()]
    dropped = [r for r in rejects if r["reason"] == "carries_secret"]
    assert dropped and all("not shown" in r["detail"] for r in dropped)
    report = verify_release(echoed["release"])
    assert report.ok, report.lines()
    manifest = json.loads((echoed["release"] / "manifest.json").read_text())
    assert manifest["data"]["filter_report"]["respond"]["text_safety"]["dropped"]["carries_secret"] == len(dropped)


def test_error_bodies_that_echo_a_masked_key_are_scrubbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    key = fake_key("sk-", 40)
    monkeypatch.setenv("ECHO_TEST_KEY", key)

    class Echo(Recorder):
        def app(self):  # type: ignore[override]
            from aiohttp import web

            async def answer(request: web.Request) -> web.Response:
                sent = request.headers.get("Authorization", "").removeprefix("Bearer ")
                message = f"Invalid request for key {masked(sent)} (also {sent[3:15]})"
                return web.json_response({"error": {"message": message, "type": "invalid_request_error"}}, status=400)

            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", answer)
            return app

    async def call(url: str) -> Any:
        ep = EndpointConfig(name="e", base_url=url, profile="openai", api_key_env="ECHO_TEST_KEY", max_attempts=1)
        cache = CallCache(tmp_path / "cache", mode="use")
        async with LLMClient({"e": ep}, cache=cache) as client:
            messages = [{"role": "user", "content": "hi"}]
            result = await client.chat_text(stage="t", endpoint="e", model="m", messages=messages)
        cache.close()
        return result

    with Echo() as server:
        result = asyncio.run(call(server.base_url))
    assert not result.ok and MARKER in (result.failure or "")
    errors = (tmp_path / "cache" / "errors.jsonl").read_text()
    assert MARKER in errors
    for needle in (key, masked(key), key[3:15], key[-4:] + " "):
        assert needle not in errors and needle not in (result.failure or "")


# ------------------------------------------------------------------------------------------ verify


def test_verify_scans_every_string_cell(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq
    from release_fixtures import write_synthetic_release

    release = write_synthetic_release(tmp_path / "r")
    assert verify_release(release).ok
    path = next((release / "data" / "pairs").glob("train-*.parquet"))
    rows = pq.read_table(path).to_pylist()
    token = fake_key("hf_", 34)
    rows[3]["judge_votes"][1]["rationale"] = f"as the key {token} says"  # deep inside a nested column
    pq.write_table(pa.Table.from_pylist(rows, schema=pq.read_schema(path)), path)
    report = verify_release(release)
    failed = {c.name: c.detail for c in report.failures}
    assert "text cells" in failed, report.lines()
    assert "row 3 judge_votes[1].rationale" in failed["text cells"] and token not in "\n".join(report.lines())


# ------------------------------------------------------------------------------------------ --base-url userinfo


@pytest.mark.parametrize("url", ["http://user:hunter2pass@127.0.0.1:9/v1", "http://user:hunter2pass@[::1/v1"])
def test_a_base_url_with_userinfo_is_refused_in_one_line_without_the_password(
    url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["build", str(DEMO), "--work", str(tmp_path / "w"), "--out", str(tmp_path / "o"), "--base-url", url])
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert code == 2 and err.startswith("error: ") and "\n" not in err, err
    assert "hunter2pass" not in captured.err + captured.out

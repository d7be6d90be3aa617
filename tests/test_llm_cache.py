"""The call cache: canonical keys, append-only shards, torn lines, modes, multi-process sharing."""

from __future__ import annotations

import json
import subprocess
import sys
import unicodedata
from pathlib import Path

import pytest

from wikipersona_data.errors import ConfigError
from wikipersona_data.llm.cache import CallCache, call_key, canonical_json


def _spec(i: int = 0, **extra) -> dict:
    spec = {
        "api": "chat",
        "endpoint": "http://127.0.0.1:8000/v1",
        "model": "m",
        "messages": [{"role": "user", "content": f"q{i}"}],
        "params": {"temperature": 0.0},
        "sample_idx": 0,
        "attempt": 0,
    }
    spec.update(extra)
    return spec


def test_key_is_canonical_over_dict_order_and_unicode_form():
    a = {"b": 1, "a": [unicodedata.normalize("NFD", "café")]}
    b = {"a": [unicodedata.normalize("NFC", "café")], "b": 1}
    assert call_key(a) == call_key(b)
    assert canonical_json(b) == '{"a":["café"],"b":1}'
    assert call_key(_spec(attempt=1)) != call_key(_spec(attempt=0))
    assert call_key(_spec(sample_idx=1)) != call_key(_spec())


def test_put_get_roundtrip_and_hit_miss_counts(tmp_path: Path):
    cache = CallCache(tmp_path, mode="use")
    key = call_key(_spec())
    assert cache.get(key) is None
    cache.put(
        key, _spec(), {"choices": [{"message": {"content": "hé"}}]}, served_model="m-1", usage={"prompt_tokens": 3}
    )
    rec = cache.get(key)
    assert rec["response"]["choices"][0]["message"]["content"] == "hé"
    assert rec["served_model"] == "m-1"
    assert (cache.hits, cache.misses) == (1, 1)
    cache.close()
    shard = tmp_path / "calls" / f"{key[:2]}.jsonl"
    assert shard.exists() and shard.read_text(encoding="utf-8").count("\n") == 1
    # a new process-level instance finds it through the lazily built index
    again = CallCache(tmp_path)
    assert again.get(key)["usage"] == {"prompt_tokens": 3}


def test_many_keys_and_latest_record_wins(tmp_path: Path):
    cache = CallCache(tmp_path, fsync_every=100)
    keys = [call_key(_spec(i)) for i in range(300)]
    for i, key in enumerate(keys):
        cache.put(key, _spec(i), {"i": i})
    cache.put(keys[5], _spec(5), {"i": "new"})
    cache.close()
    reopened = CallCache(tmp_path)
    assert [reopened.get(k)["response"]["i"] for k in keys[:5]] == [0, 1, 2, 3, 4]
    assert reopened.get(keys[5])["response"]["i"] == "new"
    assert reopened.get(keys[299])["response"]["i"] == 299
    assert CallCache(tmp_path).keys() == set(keys)


def test_torn_last_line_is_skipped_reported_and_sealed(tmp_path: Path):
    cache = CallCache(tmp_path)
    k1, k2, k3 = (call_key(_spec(i)) for i in range(3))
    # force all into one shard to exercise the torn tail in the same file
    k2 = k1[:2] + k2[2:]
    k3 = k1[:2] + k3[2:]
    cache.put(k1, _spec(1), {"ok": 1})
    cache.close()
    shard = tmp_path / "calls" / f"{k1[:2]}.jsonl"
    with open(shard, "ab") as fh:  # what SIGKILL in the middle of a write leaves behind
        fh.write(b'{"key":"' + k2.encode() + b'","spec":{"api":"ch')
    reader = CallCache(tmp_path)
    assert reader.get(k2) is None
    assert reader.get(k1)["response"] == {"ok": 1}
    assert reader.torn_lines == 1
    # the next writer seals the torn tail, so its own record stays readable
    reader.put(k3, _spec(3), {"ok": 3})
    reader.close()
    fresh = CallCache(tmp_path)
    assert fresh.get(k3)["response"] == {"ok": 3}
    assert fresh.get(k1)["response"] == {"ok": 1}
    assert fresh.get(k2) is None
    assert fresh.torn_lines == 1


def test_modes(tmp_path: Path):
    key = call_key(_spec())
    with CallCache(tmp_path) as cache:
        cache.put(key, _spec(), {"v": "old"})
    refresh = CallCache(tmp_path, mode="refresh")
    assert refresh.get(key) is None  # existing entries ignored
    refresh.put(key, _spec(), {"v": "new"})
    assert refresh.get(key)["response"] == {"v": "new"}  # but what this run wrote is served
    refresh.close()
    assert CallCache(tmp_path, mode="use").get(key)["response"] == {"v": "new"}
    assert refresh.peek(call_key(_spec(9))) is None
    peeker = CallCache(tmp_path, mode="refresh")
    assert peeker.peek(key)["response"] == {"v": "new"} and (peeker.hits, peeker.misses) == (0, 0)
    only = CallCache(tmp_path, mode="only")
    assert only.get(key)["response"] == {"v": "new"}
    assert only.get(call_key(_spec(9))) is None
    off_dir = tmp_path / "off"
    off = CallCache(off_dir, mode="off")
    off.put(key, _spec(), {"v": 1})
    assert off.get(key) is None
    assert not off_dir.exists()
    with pytest.raises(ConfigError, match="cache mode 'sometimes'"):
        CallCache(tmp_path, mode="sometimes")  # type: ignore[arg-type]


def test_errors_go_to_errors_jsonl_never_to_calls(tmp_path: Path):
    cache = CallCache(tmp_path)
    key = call_key(_spec())
    cache.put_error(key, _spec(), "http_503", "service unavailable", status=503)
    cache.close()
    assert CallCache(tmp_path).get(key) is None
    lines = (tmp_path / "errors.jsonl").read_text().splitlines()
    assert json.loads(lines[0])["kind"] == "http_503"
    assert not list((tmp_path / "calls").glob("*.jsonl"))


_WRITER = """
import sys
from wikipersona_data.llm.cache import CallCache, call_key
cache = CallCache(sys.argv[1])
for i in range(int(sys.argv[3])):
    spec = {"w": sys.argv[2], "i": i}
    cache.put(call_key(spec), spec, {"text": "x" * 3000, "w": sys.argv[2], "i": i})
cache.close()
"""


def test_two_processes_append_to_one_cache_and_a_reader_tails_them(tmp_path: Path):
    reader = CallCache(tmp_path)
    probe = call_key({"w": "a", "i": 0})
    assert reader.get(probe) is None  # indexes the (empty) shard before the writers run
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(tmp_path), w, "200"]) for w in ("a", "b")]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    for w in ("a", "b"):
        for i in range(200):
            rec = reader.get(call_key({"w": w, "i": i}))
            assert rec is not None and rec["response"]["i"] == i and rec["response"]["w"] == w
    assert reader.torn_lines == 0


def test_canonical_json_normalises_strings_and_keys_to_nfc() -> None:
    composed, decomposed = "caf\u00e9", "cafe\u0301"
    assert canonical_json({decomposed: [decomposed]}) == canonical_json({composed: [composed]})
    assert call_key({"m": decomposed}) == call_key({"m": composed})
    assert canonical_json({"b": 1, "a": "x"}) == '{"a":"x","b":1}'

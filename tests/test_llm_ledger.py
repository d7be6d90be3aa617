"""Ledger accounting, prices, estimates; endpoint config and profiles."""

from __future__ import annotations

import json
import logging

import pytest

from wikipersona_data.errors import ConfigError
from wikipersona_data.llm.config import EndpointConfig, ModelPrice, PriceTable, normalise_base_url
from wikipersona_data.llm.ledger import Ledger, estimate_tokens
from wikipersona_data.llm.profiles import PROFILES, get_profile

PRICES = PriceTable({"big": ModelPrice(input_per_m=2.0, output_per_m=8.0, cached_input_per_m=0.5)})


def _usage(p: int, c: int, cached: int = 0) -> dict:
    return {"prompt_tokens": p, "completion_tokens": c, "prompt_tokens_details": {"cached_tokens": cached}}


def test_costs_tokens_and_cache_hits_per_stage_and_model():
    ledger = Ledger(PRICES)
    ledger.record_request("describe", "big")
    ledger.record_call("describe", "big", usage=_usage(1000, 500, cached=400), latency_s=0.5, cached=False)
    ledger.record_request("describe", "big")
    ledger.record_error("describe", "big", "http_429")
    ledger.record_request("describe", "big")
    ledger.record_call("describe", "big", usage=_usage(1000, 500), latency_s=1.5, cached=False)
    ledger.record_call("describe", "big", usage=_usage(1000, 500), latency_s=None, cached=True)
    s = ledger.summary()
    row = s["by_stage_model"][0]
    assert (row["stage"], row["model"]) == ("describe", "big")
    assert row["requests"] == 3 and row["calls"] == 3 and row["cache_hits"] == 1
    assert (row["input_tokens"], row["output_tokens"], row["cached_tokens"]) == (2000, 1000, 400)
    # 600*2 + 400*0.5 + 500*8 for the first, 1000*2 + 500*8 for the second, per million
    assert row["cost_usd"] == pytest.approx((1200 + 200 + 4000 + 2000 + 4000) / 1e6)
    assert row["saved_usd"] == pytest.approx((2000 + 4000) / 1e6)
    assert row["errors"] == {"http_429": 1}
    assert row["latency_s"]["sum"] == pytest.approx(2.0) and row["latency_s"]["p95"] == pytest.approx(1.5)
    assert s["cache"] == {"hits": 1, "misses": 2}
    assert ledger.spent_usd == pytest.approx(row["cost_usd"])
    json.dumps(s)  # manifest-ready


def test_unknown_price_is_none_with_a_warning_and_missing_usage_is_not_zero(caplog):
    ledger = Ledger(PRICES)
    with caplog.at_level(logging.WARNING):
        ledger.record_call("judge", "mystery", usage=_usage(10, 5), latency_s=0.1, cached=False)
    assert "mystery" in caplog.text
    ledger.record_call("judge", "big", usage=None, latency_s=0.1, cached=False)
    rows = {r["model"]: r for r in ledger.summary()["by_stage_model"]}
    assert rows["mystery"]["cost_usd"] is None
    assert rows["big"]["calls_without_usage"] == 1 and rows["big"]["input_tokens"] == 0
    assert ledger.summary()["totals"]["cost_usd"] is None


def test_estimate_is_an_upper_bound_from_max_tokens():
    ledger = Ledger(PRICES)
    plan = ledger.estimate([("q", "big", 100, 50), ("q", "big", 300, 50), ("r", "free", 10, 10)])
    rows = {(r["stage"], r["model"]): r for r in plan["by_stage_model"]}
    assert rows[("q", "big")]["calls"] == 2
    assert rows[("q", "big")]["cost_usd"] == pytest.approx((400 * 2 + 100 * 8) / 1e6)
    assert rows[("r", "free")]["cost_usd"] is None
    assert plan["totals"]["calls"] == 3 and plan["totals"]["cost_usd"] is None


def test_estimate_tokens_is_chars_over_four_plus_overhead():
    assert estimate_tokens("x" * 40) == 10
    msgs = [{"role": "system", "content": "x" * 8}, {"role": "user", "content": "y" * 9}]
    assert estimate_tokens(msgs) == 2 + 4 + 3 + 4


def test_price_table_from_mapping_and_bad_rows():
    table = PriceTable.from_mapping({"m": {"input_per_m": 1, "output_per_m": 2}})
    assert table.get("m").cost(1_000_000, 0) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match=r"'m'.*unknown field 'colour'"):
        PriceTable.from_mapping({"m": {"input_per_m": 1, "output_per_m": 2, "colour": 3}})
    with pytest.raises(ConfigError, match=r"'m'.*needs input_per_m"):
        PriceTable.from_mapping({"m": {"input_per_m": 1}})


def test_endpoint_identity_normalises_the_base_url():
    assert normalise_base_url("HTTP://LocalHost:80/v1/") == "http://localhost/v1"
    assert normalise_base_url("https://api.openai.com:443/v1") == "https://api.openai.com/v1"
    assert normalise_base_url("http://127.0.0.1:8000/v1") == "http://127.0.0.1:8000/v1"
    ep = EndpointConfig(name="a", base_url="http://Host:8000/v1/", profile="vllm")
    assert ep.identity == "http://host:8000/v1"
    assert EndpointConfig(name="a", base_url="http://x/v1", profile="vllm", alias="shared").identity == "shared"
    with pytest.raises(ConfigError, match="unknown endpoint profile 'tgi'"):
        EndpointConfig(name="a", base_url="http://x/v1", profile="tgi")
    with pytest.raises(ConfigError, match="not an http"):
        EndpointConfig(name="a", base_url="ftp://x/v1", profile="vllm")
    with pytest.raises(ConfigError, match="max_concurrency"):
        EndpointConfig(name="a", base_url="http://x/v1", profile="vllm", max_concurrency=0)


def test_profiles_map_params():
    params = {"temperature": 0.0, "max_tokens": 100, "seed": 7, "top_p": None}
    assert get_profile("openai").request_params(params) == {"temperature": 0.0, "max_completion_tokens": 100, "seed": 7}
    assert get_profile("vllm").request_params(params) == {"temperature": 0.0, "max_tokens": 100, "seed": 7}
    from dataclasses import replace

    no_seed = replace(get_profile("llamacpp"), supports_seed=False)
    assert "seed" not in no_seed.request_params(params)
    assert {name for name, p in PROFILES.items() if p.enforces_json_schema} == {"openai", "vllm", "llamacpp", "sim"}
    assert [name for name, p in PROFILES.items() if p.requires_key] == ["openai"]


def test_batch_replies_cost_half_and_the_summary_splits_paid_calls_by_mode():
    ledger = Ledger(PRICES)
    ledger.record_call("judge", "big", usage=_usage(1000, 500, cached=400), latency_s=0.5, cached=False)
    ledger.record_call("judge", "big", usage=_usage(1000, 500, cached=400), latency_s=None, cached=False, mode="batch")
    ledger.record_call("judge", "big", usage=_usage(1000, 500), latency_s=None, cached=True, mode="batch")
    listed = (600 * 2 + 400 * 0.5 + 500 * 8) / 1e6
    s = ledger.summary()
    row = s["by_stage_model"][0]
    assert row["cost_usd"] == pytest.approx(listed * 1.5)
    assert row["by_mode"]["online"]["cost_usd"] == pytest.approx(listed)
    assert row["by_mode"]["batch"]["cost_usd"] == pytest.approx(listed / 2)
    assert row["by_mode"]["batch"]["calls"] == 1  # the cache hit was not bought again
    assert row["saved_usd"] == pytest.approx((1000 * 2 + 500 * 8) / 1e6 / 2)  # a hit priced as it was paid
    assert [m["mode"] for m in s["by_mode"]] == ["batch", "online"]
    assert sum(m["cost_usd"] for m in s["by_mode"]) == pytest.approx(s["totals"]["cost_usd"])
    assert ledger.spent_usd == pytest.approx(listed * 1.5)
    assert PRICES.get("big").cost(1000, 500, mode="offline") == PRICES.get("big").cost(1000, 500)
    with pytest.raises(ValueError, match="unknown price mode"):
        ledger.cost("big", 1, 1, mode="cheap")


def test_data_ledger_prices_each_cached_reply_in_the_mode_it_was_bought(tmp_path):
    from wikipersona_data.llm.cache import CallCache
    from wikipersona_data.stages.usage import data_ledger

    cache = CallCache(tmp_path)
    body = {"choices": [{"message": {"content": "x"}}], "usage": _usage(1000, 500)}
    spec = {"api": "chat", "model": "big", "messages": [{"role": "user", "content": "q"}]}
    cache.put("a" * 64, spec, body, usage=body["usage"])
    cache.put("b" * 64, spec, body, usage=body["usage"], mode="batch")
    got = data_ledger(cache, PRICES, {"judge": {"a" * 64, "b" * 64}})
    modes = {m["mode"]: m for m in got["by_mode"]}
    assert modes["online"]["cost_usd"] == pytest.approx(2 * modes["batch"]["cost_usd"])
    assert modes["online"]["calls"] == modes["batch"]["calls"] == 1
    assert got["totals"]["cost_usd"] == pytest.approx(modes["online"]["cost_usd"] * 1.5)
    cache.close()

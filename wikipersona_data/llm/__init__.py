"""The LLM layer: one OpenAI-compatible client with cache, limits, retries and ledger; the simulator."""

"""Generation stages: personas, describe, questions, respond, judge, split, prefixes (one module each)."""

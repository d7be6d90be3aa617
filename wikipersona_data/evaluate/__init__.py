"""``wikipersona evaluate``: the paper's personalization evaluation on a release (issue 14, items 1 and 2).

- ``data.py``: the release as evaluate reads it (verified rows, the build's recipe with the user's endpoints);
- ``endpoints.py``: which endpoint and model ``--policy`` / ``--accuracy-judge`` name;
- ``prompts.py``: the prefix modes and the policy's messages for each;
- ``winrate.py``: a policy's answers judged against the pairs' chosen answers by the release's judge;
- ``accuracy.py``: how often a judge prefers chosen over rejected, with and without each prefix;
- ``stats.py``: win rates, equity and seeded bootstrap intervals;
- ``report.py``: the stdout table and ``eval.json``; ``charts.py``: the optional charts;
- ``run.py``: one run (client, cache, ledger, budget) over all of the above; ``commands.py``: the CLI.
"""

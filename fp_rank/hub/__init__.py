"""Publishing on the Hugging Face Hub: the metric Space, benchmark results and leaderboards.

- :mod:`~fp_rank.hub.space_build`: assemble (and push) the Space that ``evaluate.load("ORG/fp-rank")``
  loads: the metric module under the name evaluate looks for, the metric card, the app, its
  requirements;
- :mod:`~fp_rank.hub.results`: a report's scores as the Hub's ``.eval_results/*.yaml`` entries,
  pointing at the benchmark dataset (whose ``eval.yaml`` the gallery writer writes);
- :mod:`~fp_rank.hub.leaderboard`: a ranked table (Markdown and PNG) from a folder of reports.

Nothing here touches the network unless asked to push; ``huggingface_hub`` is imported where used.
"""

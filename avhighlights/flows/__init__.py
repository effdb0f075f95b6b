"""Prefect flows (the only package that imports Prefect; install the `flows` extra).

- `extract_and_score`: one video -> clips and results (deployment `extract-and-score/extract-and-score`).
- `reprocess`: a whole folder or manifest, resumable, optional evaluation.
- `serve`: `python -m avhighlights.flows.serve` / `avhighlights serve` serves the deployment.

Importing this package does not import Prefect, so the CLI can register its subcommands cheaply.
"""

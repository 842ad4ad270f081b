"""The documents of the development corpus, one module per round (scripts/build-dev-corpus.py)."""

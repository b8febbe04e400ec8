"""What ``qfrun init`` writes: a starter pipeline, its evaluation data and the demo model (package data).

``tiny-adder`` and ``eval.jsonl`` are links to the repository's ``models/tiny-adder`` and
``data/addition/eval.jsonl``, so the demo model is kept once; building the wheel copies what they point at.
"""

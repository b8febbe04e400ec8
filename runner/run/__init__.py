"""Decide what each stage does and do it: the plan, the executor, the inputs and fingerprints they share."""

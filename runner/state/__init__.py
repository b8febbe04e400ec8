"""The state file: what each stage did, written atomically and journaled, under a lock held by one run."""

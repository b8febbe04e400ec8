"""Everything a person reads: the plan, the stage graph, the run report (Markdown and HTML), live progress."""

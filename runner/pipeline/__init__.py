"""Load and validate a pipeline file: YAML with positions, the JSON Schema, expressions, the stage graph.

Nothing here runs a stage or talks to a platform; ``qfrun validate`` needs only this package.
"""

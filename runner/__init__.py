"""qfrun: declarative YAML pipelines for the life cycle of large language models."""

__version__ = "0.1.0"

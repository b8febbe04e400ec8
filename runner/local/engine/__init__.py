"""The local platform's model runtime (torch, transformers, llmcompressor): imported only by workers."""

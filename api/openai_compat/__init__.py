"""The OpenAI-compatible API: ``/v1/chat/completions`` and ``/v1/models`` over Lore's answer service.

The same answers, grants, rate limits, cache and verification as ``/v1/query``, in the shapes the
OpenAI clients speak (docs/api.md, "OpenAI-compatible API").
"""

"""Retrieval and answering: question to sources to a cited, streamed answer."""

"""Ingestion: sources to extracted, chunked, embedded chunks in the vector store."""

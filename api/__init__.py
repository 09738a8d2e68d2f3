"""The FastAPI service: thin routes over the retrieval and ingestion services."""

"""Operations: request IDs, JSON logs, metrics, readiness, body and rate limits, CORS."""

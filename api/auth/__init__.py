"""Identity: users, passwords, JWT access and refresh tokens, API keys, OIDC login, route guards."""

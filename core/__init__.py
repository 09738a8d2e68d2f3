"""Settings, domain types, errors and the adapters shared by every layer of Lore."""

"""Lore over the Model Context Protocol: the server (tools, resources) and its two transports."""

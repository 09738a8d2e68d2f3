"""`python -m cli` runs the `lore` command."""

from cli.main import app

app(prog_name="lore")

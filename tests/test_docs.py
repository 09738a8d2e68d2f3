"""Docs stay in step with the code."""

from pathlib import Path

from pydantic import BaseModel

from core.settings import Settings

REPO = Path(__file__).resolve().parent.parent


def env_names(model: type[BaseModel], prefix: str) -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            names += env_names(field.annotation, f"{prefix}{name.upper()}__")
        else:
            names.append(f"{prefix}{name.upper()}")
    return names


def test_every_setting_is_documented() -> None:
    text = (REPO / "docs" / "configuration.md").read_text()
    missing = [n for n in env_names(Settings, "LORE_") if f"`{n}`" not in text]
    assert not missing, f"add these to docs/configuration.md: {missing}"


def test_readme_starts_with_the_two_setup_commands() -> None:
    readme = (REPO / "README.md").read_text()
    first_block = readme.split("```bash", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.strip().splitlines()]
    assert commands == ["make demo", "make test"]
    assert "bash .ci/run" not in first_block
    assert "make test" in (REPO / ".ci" / "run").read_text()

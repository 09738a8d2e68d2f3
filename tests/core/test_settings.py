from pathlib import Path

import pytest

from core.settings import Settings


def test_defaults_are_the_embedded_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(__import__("os").environ):
        if key.startswith("LORE_"):
            monkeypatch.delenv(key)
    settings = Settings()
    assert settings.data_dir == Path(".lore")
    assert settings.vector_store.url is None
    assert settings.llm.base_url is None
    assert settings.uses_sqlite
    assert settings.database_url.endswith("/.lore/lore.db")


def test_environment_switches_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LORE_DATA_DIR", "/srv/lore")
    monkeypatch.setenv("LORE_DATABASE__URL", "postgresql+asyncpg://u@db/lore")
    monkeypatch.setenv("LORE_VECTOR_STORE__URL", "http://qdrant:6333")
    monkeypatch.setenv("LORE_LLM__BASE_URL", "http://vllm:8000/v1")
    settings = Settings()
    assert settings.data_dir == Path("/srv/lore")
    assert not settings.uses_sqlite
    assert settings.vector_store.url == "http://qdrant:6333"
    assert settings.llm.base_url == "http://vllm:8000/v1"


def test_profile_file_is_read_and_environment_wins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "settings-test.yaml").write_text("retrieval:\n  k: 7\n  mode: dense\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORE_PROFILE", "test")
    monkeypatch.setenv("LORE_RETRIEVAL__MODE", "sparse")
    settings = Settings()
    assert settings.retrieval.k == 7
    assert settings.retrieval.mode == "sparse"


def test_missing_profile_file_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LORE_PROFILE", "nope")
    with pytest.raises(FileNotFoundError, match=r"settings-nope\.yaml"):
        Settings()


def test_production_refuses_missing_or_placeholder_secrets() -> None:
    from pydantic import ValidationError

    from core.settings import AuthSettings

    with pytest.raises(ValidationError, match="LORE_AUTH__JWT_KEYS"):
        Settings(environment="production")
    for placeholder in ("change-me", "please-change-this-secret-value-0000000000", "x" * 40):
        with pytest.raises(ValidationError, match="placeholder"):
            Settings(environment="production", auth=AuthSettings(jwt_keys={"k": placeholder}))
    real = "kq83JD0s-Zp1Lw7vNn2Rt5Yc9Xb4Hm6Ge8Fa3Ud0Ti"
    assert (
        Settings(environment="production", auth=AuthSettings(jwt_keys={"k": real})).environment
        == "production"
    )
    with pytest.raises(ValidationError, match="OIDC in production"):
        Settings(
            environment="production",
            auth=AuthSettings(jwt_keys={"k": real}, oidc_issuer="https://id.example", oidc_client_id="lore"),
        )

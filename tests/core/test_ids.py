from core import ids


def test_document_id_is_stable_and_depends_on_corpus_and_source() -> None:
    a = ids.document_id("handbook", "/docs/a.md")
    assert a == ids.document_id("handbook", "/docs/a.md")
    assert a != ids.document_id("other", "/docs/a.md")
    assert a != ids.document_id("handbook", "/docs/b.md")


def test_chunk_id_changes_with_content_position_and_chunker() -> None:
    doc = ids.document_id("c", "s")
    base = ids.chunk_id(doc, "some text", 0, "v1")
    assert base == ids.chunk_id(doc, "some text", 0, "v1")
    assert base != ids.chunk_id(doc, "other text", 0, "v1")
    assert base != ids.chunk_id(doc, "some text", 1, "v1")
    assert base != ids.chunk_id(doc, "some text", 0, "v2")


def test_content_hash_treats_text_as_utf8() -> None:
    assert ids.content_hash("é") == ids.content_hash("é".encode())

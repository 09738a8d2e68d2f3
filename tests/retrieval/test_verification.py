"""Sentence-level verification: each delivered sentence, and every specific in it, is in a source."""

from __future__ import annotations

import pytest

from retrieval.verification import (
    UNVERIFIED_MARK,
    Sentence,
    Verifier,
    complete_sentences,
    normalise,
    specifics,
    split_sentences,
    verify,
)

HANDBOOK = (
    "# Ingesting documents\n\nIngesting loads documents into a corpus: Lore reads each file, cuts it "
    "into chunks, embeds the chunks and stores them.\n\n```bash\nlore ingest PATH... [--corpus NAME] "
    "[--json]\n```\n\n`PATH` may be a single file or a folder; folders are read recursively. Without "
    "`--corpus`, documents go into the default corpus."
)
WARRANTY = "The Alpha widget warranty lasts two years from the date of purchase. Returns need a receipt."


def kinds(text: str) -> list[tuple[str, str]]:
    return [(s.kind, s.text) for s in split_sentences(text)]


def found(text: str) -> list[tuple[str, str]]:
    return [(s.kind, s.text) for s in specifics(Sentence(text))]


# --- splitting -------------------------------------------------------------------------------


def test_markers_after_a_full_stop_belong_to_the_sentence_before() -> None:
    assert [s.text for s in split_sentences("Alpha holds. [1] Beta holds too [2].\nGamma.")] == [
        "Alpha holds. [1]",
        "Beta holds too [2].",
        "Gamma.",
    ]


def test_a_full_stop_inside_a_code_span_or_before_lower_case_ends_nothing() -> None:
    assert kinds("Run `lore ask. Then` now. Use e.g. a folder. PATH... may be a file.") == [
        ("prose", "Run `lore ask. Then` now."),
        ("prose", "Use e.g. a folder."),
        ("prose", "PATH... may be a file."),
    ]


def test_code_blocks_list_items_table_rows_and_headings_are_units_of_their_own() -> None:
    text = (
        "## Ingest\n\n- First item. Second sentence.\n2. Numbered item\n\n```bash\nlore ingest a. B\n```\n"
        "| format | ext |\n| --- | --- |\n| PDF | `.pdf` |"
    )
    assert kinds(text) == [
        ("prose", "## Ingest"),
        ("prose", "- First item."),
        ("prose", "Second sentence."),
        ("prose", "2. Numbered item"),
        ("code", "```bash\nlore ingest a. B\n```"),
        ("table", "| format | ext |"),
        ("structure", "| --- | --- |"),
        ("table", "| PDF | `.pdf` |"),
    ]


def test_a_streaming_draft_yields_only_sentences_something_follows() -> None:
    assert complete_sentences("First one. Sec") == ([Sentence("First one.")], " Sec")
    # its marker may still be coming, or a code span may still be open
    assert complete_sentences("First one. [1") == ([], "First one. [1")
    assert complete_sentences("Run `a. B") == ([], "Run `a. B")
    assert complete_sentences("```bash\nlore ingest\n") == ([], "```bash\nlore ingest\n")


def test_streamed_in_any_pieces_a_draft_splits_as_it_does_whole() -> None:
    draft = "Lore reads each file [1]. It embeds the chunks. [1]\n- Folders are read recursively [1]."
    whole = verify(draft, [HANDBOOK], min_support=0.3)
    for size in (1, 3, 7):
        verifier = Verifier([HANDBOOK], min_support=0.3)
        for i in range(0, len(draft), size):
            verifier.feed(draft[i : i + size])
        verifier.finish()
        assert verifier.result() == whole


# --- specifics --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "specific"),
    [
        ("Run `lore ingest -n 1` to filter.", ("code", "lore ingest -n 1")),
        ("You can pass --print-table to it.", ("flag", "--print-table")),
        ("Add -n to limit it.", ("flag", "-n")),
        ("Then run lore ingest --json here.", ("command", "lore ingest")),
        ("Set max_chunks_per_document first.", ("identifier", "max_chunks_per_document")),
        ("Set retrieval.k first.", ("identifier", "retrieval.k")),
        ("It calls embedQuery once.", ("identifier", "embedQuery")),
        ("The model is SmolLM2 here.", ("identifier", "SmolLM2")),
        ("Files live in ~/Documents/policies now.", ("path", "~/Documents/policies")),
        ("See https://example.com/docs/a for more.", ("url", "https://example.com/docs/a")),
        ('It prints "no citations" at the end.', ("quote", "no citations")),
        ("The warranty lasts 2 years.", ("number", "2 years")),
        ("It is 15 % faster.", ("number", "15 %")),
        ("It stores vectors in Qdrant.", ("name", "Qdrant")),
    ],
)
def test_each_kind_of_specific_is_found(text: str, specific: tuple[str, str]) -> None:
    assert specific in found(text)


def test_a_capital_that_opens_a_sentence_names_nothing() -> None:
    assert found("The folder is read.") == []
    assert found("Note: Folders are read.") == []


def test_comparison_folds_case_quotes_dashes_and_number_words() -> None:
    assert normalise("It’s a “Quoted” – Dash  `code`") == 'it\'s a "quoted" - dash code'
    source = ["Lore’s “default corpus” holds files \u2014 two years of them; see --Corpus."]
    assert verify("It keeps 2 years of files [1].", source, min_support=0.3).supported
    assert verify('It uses the "default corpus" for files [1].', source, min_support=0.3).supported
    assert verify("Pass --corpus for other files [1].", source, min_support=0.3).supported


# --- verdicts ---------------------------------------------------------------------------------


def test_an_invented_flag_removes_its_sentence_with_the_reason() -> None:
    draft = (
        "Use `lore ingest PATH` to load documents into a corpus [1]. "
        "You can also pass --print-table to print a table of documents [1]."
    )
    result = verify(draft, [HANDBOOK], question="How do I ingest documents?", min_support=0.3)
    assert result.text == "Use `lore ingest PATH` to load documents into a corpus [1]."
    assert [(u.sentence, u.reason) for u in result.unsupported] == [
        (
            "You can also pass --print-table to print a table of documents [1].",
            "`--print-table` is in no source",
        )
    ]
    assert result.verdict == "1 of 2 sentence(s) supported, 1 dropped"
    assert result.cited == [1] and result.uncited == []


def test_a_code_span_must_occur_whole_in_the_source() -> None:
    draft = "Run `lore ingest -n 1 [--corpus NAME]` to filter documents by name [1]."
    result = verify(draft, [HANDBOOK], min_support=0.3)
    assert not result.supported and result.text == ""
    assert result.unsupported[0].reason == "`lore ingest -n 1 [--corpus NAME]` is in no source"


def test_a_number_its_source_lacks_fails_although_the_words_match() -> None:
    result = verify("The Alpha widget warranty lasts 5 years [1].", [WARRANTY], min_support=0.3)
    assert result.unsupported[0].reason == "`5 years` is in no source"
    assert verify("The Alpha widget warranty lasts 2 years [1].", [WARRANTY], min_support=0.3).supported


def test_words_the_sources_lack_fail_and_the_question_does_not_count_as_support() -> None:
    question = "What is the rest temperature of the Alpha widget?"
    result = verify(
        "The Alpha widget rests at cold temperatures [1].", [WARRANTY], question=question, min_support=0.3
    )
    assert result.unsupported[0].reason.startswith("its words are in no source")


def test_a_specific_in_another_source_than_the_one_with_the_words_is_named() -> None:
    sources = [WARRANTY, "Qdrant stores the vectors."]
    result = verify("The Alpha widget warranty is stored in Qdrant [1].", sources, min_support=0.3)
    assert result.unsupported[0].reason == "`Qdrant` is not in source 1, which holds its words"


def test_citations_are_reattached_to_the_source_that_supports_each_kept_sentence() -> None:
    sources = ["Returns need a receipt.", WARRANTY]
    # cites [1], which lacks it; source 2 holds it: [1] goes, [2] comes
    result = verify(
        "The warranty lasts two years from purchase [1]. Returns need a receipt.", sources, min_support=0.5
    )
    assert result.text == "The warranty lasts two years from purchase [2]. Returns need a receipt [1]."
    assert result.cited == [2, 1] and result.uncited == []


def test_a_citation_to_a_source_that_supports_nothing_kept_is_reported() -> None:
    sources = [WARRANTY, "Returns need a receipt."]
    result = verify(
        "The warranty lasts two years [1]. Refunds come as gold bars at once [2].", sources, min_support=0.5
    )
    assert result.text == "The warranty lasts two years [1]."
    assert result.cited == [1] and result.uncited == [2]


def test_markers_naming_no_source_are_counted_and_removed() -> None:
    result = verify("The warranty lasts two years [7].", [WARRANTY], min_support=0.5)
    assert result.text == "The warranty lasts two years [1]."
    assert "1 marker(s) naming no source" in result.verdict


def test_the_model_saying_the_sources_lack_the_answer_is_not_an_answer() -> None:
    result = verify("The sources do not mention the warranty's length [1].", [WARRANTY], min_support=0.3)
    assert not result.supported
    assert result.unsupported[0].reason == "it says the sources do not contain the answer"


def test_a_code_block_is_kept_only_when_each_of_its_lines_is_in_a_source() -> None:
    good = "```bash\nlore ingest PATH... [--corpus NAME] [--json]\n```"
    assert verify(good, [HANDBOOK], min_support=0.3).text == good
    bad = "```bash\nlore ingest --print-table PATH\n```"
    assert verify(bad, [HANDBOOK], min_support=0.3).unsupported[0].reason == (
        "`lore ingest --print-table PATH` is in no source"
    )


def test_a_dropped_list_item_leaves_the_others_on_their_lines() -> None:
    draft = (
        "- Lore reads each file [1].\n- It also prints a table with --print-table [1].\n"
        "- Folders are read recursively [1]."
    )
    result = verify(draft, [HANDBOOK], min_support=0.3)
    assert result.text == "- Lore reads each file [1].\n- Folders are read recursively [1]."


@pytest.mark.parametrize(
    ("policy", "text", "verdict"),
    [
        ("drop", "The warranty lasts two years [1].", "1 of 2 sentence(s) supported, 1 dropped"),
        (
            "mark",
            f"The warranty lasts two years [1]. It covers dragons on Mars {UNVERIFIED_MARK}.",
            "1 of 2 sentence(s) supported, 1 marked",
        ),
        (
            "keep",
            "The warranty lasts two years [1]. It covers dragons on Mars [1].",
            "1 of 2 sentence(s) supported, 1 kept unverified",
        ),
    ],
)
def test_the_policy_drops_marks_or_keeps_an_unsupported_sentence(
    policy: str, text: str, verdict: str
) -> None:
    draft = "The warranty lasts two years [1]. It covers dragons on Mars [1]."
    result = verify(draft, [WARRANTY], min_support=0.5, policy=policy)  # type: ignore[arg-type]
    assert result.text == text and result.verdict == verdict
    assert [u.reason for u in result.unsupported] == ["`Mars` is in no source"]


def test_the_audit_names_a_delivered_specific_its_cited_source_lacks() -> None:
    from retrieval.verification import unbacked_specifics

    sources = {1: "Run `lore ingest PATH` to load files.", 2: "Pass --print-table to weigh it."}
    assert unbacked_specifics("Run `lore ingest PATH` [1].", sources) == []
    assert unbacked_specifics("Pass --print-table [1].", sources) == [
        ("Pass --print-table [1].", "--print-table")
    ]
    assert unbacked_specifics("Pass --print-table.", sources) == []


def test_an_inline_enumerator_starts_an_item_and_is_not_a_sentence_of_its_own() -> None:
    from retrieval.verification import split_sentences, unbacked_specifics

    text = "Use mo.ui.array to group them [1]. 3. Create a dictionary of elements [1]."
    assert [s.text for s in split_sentences(text)] == [
        "Use mo.ui.array to group them [1].",
        "3. Create a dictionary of elements [1].",
    ]
    assert (
        unbacked_specifics(text, {1: "Use mo.ui.array to group them. Create a dictionary of elements."}) == []
    )

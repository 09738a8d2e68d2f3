from retrieval.extractive import Candidate, candidates, extract_answer


def test_candidates_skip_headings_short_lines_and_markers() -> None:
    found = candidates(["# Title\n\nWidgets are cleaned weekly [3]. Ok.", "Gears turn slowly here."])
    assert [c.text for c in found] == ["Widgets are cleaned weekly.", "Gears turn slowly here."]
    assert [c.source for c in found] == [1, 2]


def test_a_wrapped_paragraph_is_one_sentence_and_fragments_are_skipped() -> None:
    text = (
        "Ingesting reads each file, embeds the\nchunks and stores them.\n\nScope and network exposure\n\n"
        "- a list item;\n- A list item that is a sentence.\n"
    )
    assert [c.text for c in candidates([text])] == [
        "Ingesting reads each file, embeds the chunks and stores them.",
        "A list item that is a sentence.",
    ]


def test_a_sentence_ending_in_a_colon_brings_its_code_block_or_is_skipped() -> None:
    text = (
        "You ingest with one command:\n\n```bash\nlore ingest PATH\n```\n\n"
        "It reads four kinds of files:\n\n| a | b |\n"
    )
    found = candidates([text])
    assert [(c.text, c.follow) for c in found] == [
        ("You ingest with one command:", "```bash\nlore ingest PATH\n```")
    ]
    result = extract_answer("How do I ingest?", [1.0], found, [[1.0]])
    assert result.answer == "You ingest with one command: [1]\n\n```bash\nlore ingest PATH\n```"


def test_best_sentences_in_source_order_with_citations_and_no_duplicates() -> None:
    found = [
        Candidate(1, 0, "Widgets are cleaned weekly."),
        Candidate(1, 1, "Widgets are cleaned every week."),
        Candidate(2, 0, "Gears are oiled monthly."),
    ]
    vectors = [[1.0, 0.0], [0.99, 0.01], [0.6, 0.8]]
    question = "How often are widgets cleaned?"
    result = extract_answer(question, [1.0, 0.0], found, vectors, diversity=0.6, min_relative=0.0)
    assert result.answer == "Widgets are cleaned weekly. [1] Gears are oiled monthly. [2]"
    # By default a sentence far less relevant than the best is not added to fill the budget.
    assert extract_answer(question, [1.0, 0.0], found, vectors).answer == "Widgets are cleaned weekly. [1]"


def test_budget_and_empty_inputs() -> None:
    found = [Candidate(1, 0, "A long sentence about widgets."), Candidate(1, 1, "Another one about widgets.")]
    result = extract_answer("widgets", [1.0], found, [[1.0], [0.9]], max_chars=40)
    assert len(result.chosen) == 1
    assert extract_answer("anything", [1.0], [], []).answer == ""


def test_mismatched_vectors_are_refused_and_zero_vectors_score_zero() -> None:
    found = [Candidate(1, 0, "Widgets are cleaned weekly.")]
    try:
        extract_answer("widgets", [1.0], found, [])
    except ValueError:
        pass
    else:
        raise AssertionError("a missing vector was accepted")
    assert extract_answer("", [0.0], found, [[0.0]]).answer == "Widgets are cleaned weekly. [1]"


def test_a_how_question_prefers_the_sentence_that_brings_its_command() -> None:
    found = [
        Candidate(1, 0, "Loading puts files into a corpus."),
        Candidate(1, 1, "You ingest with one command:", "```bash\nlore ingest PATH\n```"),
    ]
    vectors = [[0.8, 0.6], [0.75, 0.66]]

    def first(question: str) -> str:
        return extract_answer(question, [1.0, 0.0], found, vectors, max_chars=10).chosen[0].text

    assert first("How do I ingest documents?") == "You ingest with one command:"
    assert first("What puts files into a corpus?") == "Loading puts files into a corpus."

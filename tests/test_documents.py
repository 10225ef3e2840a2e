"""PDF and text ``document`` blocks reach every upstream in its own shape
(issue 14 item 10); a text-only chat model gets the PDF's text extracted by
pypdf, and a PDF that cannot be read a short note. The PDFs are real, made
in the test (tests/pdfs.py).

Shapes:
- Responses ``input_file`` with ``filename`` + ``file_data`` data URL:
  https://platform.openai.com/docs/guides/pdf-files (Responses tab)
- Chat Completions ``{"type": "file", "file": {"filename", "file_data"}}``:
  the same page (Chat Completions tab)
- Gemini ``inlineData`` ``application/pdf``:
  https://ai.google.dev/gemini-api/docs/document-processing
- Anthropic ``document`` block (base64 / text / url source):
  https://docs.anthropic.com/en/docs/build-with-claude/pdf-support
"""

from __future__ import annotations

import json

import pytest

from ocproxy.config import ModelConfig
from ocproxy.request import checked_request
from ocproxy.translate import chat, documents, gemini, responses, sse
from tests.pdfs import b64, blank_pdf, document, text_pdf

PDF = text_pdf("Quarterly revenue was 42 million", "Page two says hello")
DATA_URL = "data:application/pdf;base64," + b64(PDF)

GPT = ModelConfig(provider="opencode-zen", model_id="gpt-5.4")
GEMINI = ModelConfig(provider="opencode-zen", model_id="gemini-3-flash")
GLM = ModelConfig(model_id="glm-5")
PDF_CHAT = ModelConfig(model_id="some-chat-model", pdf=True)


def body(build, model, content):
    req = checked_request({"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": content}]})
    return json.loads(sse.dumps(build(req, model, False)))


def ask(doc):
    return [doc, {"type": "text", "text": "Summarise it."}]


# -- extraction (pypdf on the bytes, no mock) ---------------------------------


def test_text_pdf_is_extracted_page_by_page():
    assert documents.pdf_text(b64(PDF)) == "Quarterly revenue was 42 million\n\nPage two says hello"


@pytest.mark.parametrize("data", [b64(blank_pdf()), b64(b"not a pdf at all"), "%%% not base64 %%%",
                                  b64(b"%PDF-1.4 broken beyond repair")],
                         ids=["no-text-layer", "not-a-pdf", "not-base64", "corrupt"])
def test_unreadable_pdf_is_none(data):
    assert documents.pdf_text(data) is None


# -- per dialect ------------------------------------------------------------------


def test_responses_gets_input_file_with_data_url_and_filename():
    [item] = body(responses.build_request, GPT, ask(document(PDF, "report")))["input"]
    assert item["content"] == [
        {"type": "input_file", "filename": "report.pdf", "file_data": DATA_URL},
        {"type": "input_text", "text": "Summarise it."},
    ]


def test_gemini_gets_inline_data_application_pdf():
    [turn] = body(gemini.build_request, GEMINI, ask(document(PDF)))["contents"]
    assert turn["parts"] == [{"inlineData": {"mimeType": "application/pdf", "data": b64(PDF)}},
                             {"text": "Summarise it."}]


def test_chat_model_that_takes_files_gets_a_file_part():
    [msg] = body(chat.build_request, PDF_CHAT, ask(document(PDF, "report.pdf")))["messages"]
    assert msg["content"] == [
        {"type": "text", "text": "Summarise it."},
        {"type": "file", "file": {"filename": "report.pdf", "file_data": DATA_URL}},
    ]


def test_text_only_chat_model_gets_the_extracted_text_with_a_note():
    [msg] = body(chat.build_request, GLM, ask(document(PDF, "report")))["messages"]
    assert msg["content"] == (
        '[Text extracted from the "report" PDF; layout and images are not included]\n'
        "Quarterly revenue was 42 million\n\nPage two says hello\n\nSummarise it."
    )


@pytest.mark.parametrize("pdf", [blank_pdf(), b"%PDF-1.4 broken beyond repair"], ids=["no-text", "corrupt"])
def test_unreadable_pdf_becomes_a_short_note_for_text_only_models(pdf):
    [msg] = body(chat.build_request, GLM, [document(pdf)])["messages"]
    assert msg["content"].startswith("[The attached PDF could not be read")
    assert "not sent" in msg["content"]


def test_plain_text_document_goes_as_text_everywhere():
    doc = {"type": "document", "title": "notes", "source": {"type": "text", "media_type": "text/plain",
                                                            "data": "Line one."}}
    expected = '[Document "notes"]\nLine one.'
    assert body(chat.build_request, GLM, [doc])["messages"][0]["content"] == expected + "\n\n"
    assert body(responses.build_request, GPT, [doc])["input"][0]["content"] == [
        {"type": "input_text", "text": expected}]
    assert body(gemini.build_request, GEMINI, [doc])["contents"][0]["parts"] == [{"text": expected}]


def test_url_pdf_goes_by_url_where_the_api_takes_one():
    doc = {"type": "document", "source": {"type": "url", "url": "https://example.com/a.pdf"}}
    assert body(responses.build_request, GPT, [doc])["input"][0]["content"] == [
        {"type": "input_file", "file_url": "https://example.com/a.pdf"}]
    assert body(gemini.build_request, GEMINI, [doc])["contents"][0]["parts"] == [
        {"fileData": {"mimeType": "application/pdf", "fileUri": "https://example.com/a.pdf"}}]
    text = body(chat.build_request, GLM, [doc])["messages"][0]["content"]
    assert "https://example.com/a.pdf" in text and "not sent" in text


def test_pdf_inside_a_read_tool_result_reaches_each_dialect():
    """Claude Code's Read tool returns a PDF as a document inside its
    tool_result."""
    history = [
        {"role": "user", "content": "read report.pdf"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "Read",
                                           "input": {"file_path": "report.pdf"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1",
                                      "content": [document(PDF)]}]},
    ]

    def build(fn, model):
        req = checked_request({"model": "m", "max_tokens": 10, "messages": history})
        return json.loads(sse.dumps(fn(req, model, False)))

    items = build(responses.build_request, GPT)["input"]
    assert items[-2]["type"] == "function_call_output"
    assert items[-1]["content"][0]["type"] == "input_file"
    parts = build(gemini.build_request, GEMINI)["contents"][-1]["parts"]
    assert "functionResponse" in parts[0] and parts[1] == {"inlineData": {"mimeType": "application/pdf",
                                                                          "data": b64(PDF)}}
    tool_msg = build(chat.build_request, GLM)["messages"][-1]
    assert tool_msg["role"] == "tool" and "Quarterly revenue was 42 million" in tool_msg["content"]


def test_pdf_flag_and_web_search_scenario_load_from_a_config_file(tmp_path):
    from tests.configfiles import load, paths_of

    cfg = load(tmp_path, {"api_key": "k", "models": {
        "default": {"model_id": "glm-5", "pdf": True},
        "web_search": {"provider": "opencode-zen", "model_id": "gpt-5.4-mini"}}})
    assert cfg.models["default"].pdf is True
    assert cfg.models["web_search"].model_id == "gpt-5.4-mini"
    assert paths_of(tmp_path, {"api_key": "k", "models": {"default": {"model_id": "glm-5", "pdf": "yes"}}}) == [
        "$.models.default.pdf"]

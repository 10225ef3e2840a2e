"""Anthropic ``document`` blocks (PDFs, plain-text documents) for upstreams.

Claude Code attaches PDFs as ``document`` blocks (at the top of a user turn,
or inside the ``tool_result`` of its Read tool). Every dialect gets them in
its own shape; a model that takes no files at all gets the PDF's text,
extracted here with pypdf from the bytes in memory, under a note saying so,
and a PDF that cannot be read becomes a short note saying that instead. A
document is never dropped without a word.

Pure: blocks in, dicts and strings out (pypdf parses bytes, no file I/O).
"""

from __future__ import annotations

import base64
import binascii
import io

PDF = "application/pdf"
#: Extracted text beyond this many characters is cut (with a note): a
#: text-only model's context is the limit, and a book would fill it.
MAX_EXTRACTED_CHARS = 200_000


def document_source(block: dict) -> tuple[str, str] | None:
    """``("pdf", base64 data)``, ``("text", text)`` or ``("url", url)`` for a
    document block; None when its source is none of these."""
    source = block.get("source")
    if not isinstance(source, dict):
        return None
    kind = source.get("type")
    if kind == "base64" and isinstance(source.get("data"), str):
        return ("pdf", source["data"]) if source.get("media_type", PDF) == PDF else None
    if kind == "text" and isinstance(source.get("data"), str):
        return "text", source["data"]
    if kind == "url" and isinstance(source.get("url"), str):
        return "url", source["url"]
    if kind == "content":  # text blocks given as the document's content
        items = source.get("content")
        if isinstance(items, str):
            return "text", items
        if isinstance(items, list):
            return "text", "\n".join(i.get("text") or "" for i in items if isinstance(i, dict))
    return None


def filename(block: dict) -> str:
    """The document's title as a file name (upstreams want one), else
    ``document.pdf``."""
    title = block.get("title")
    name = title.strip() if isinstance(title, str) else ""
    name = name or "document"
    return name if name.lower().endswith(".pdf") else name + ".pdf"


def label(block: dict) -> str:
    title = block.get("title")
    return f'"{title}"' if isinstance(title, str) and title.strip() else "attached"


def pdf_text(data: str) -> str | None:
    """The text of a base64 PDF, pages separated by blank lines; None when
    the bytes are not a readable PDF (or hold no text layer)."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return None
    if b"%PDF-" not in raw[:1024]:  # not a PDF at all: no need to ask the parser
        return None
    # Imported on the first PDF: pypdf is 10 MB of a serving process's idle memory.
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(raw))
        if reader.is_encrypted:
            reader.decrypt("")  # many PDFs are "encrypted" with an empty password
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except (PyPdfError, ValueError, TypeError, KeyError, AttributeError, OSError, RecursionError,
            NotImplementedError):
        return None
    text = "\n\n".join(p for p in pages if p)
    return text or None


def chat_part(block: dict) -> dict | None:
    """An OpenAI chat ``file`` part for a PDF (inline data URL); None for
    any other document, which goes as text."""
    src = document_source(block)
    if src is None or src[0] != "pdf":
        return None
    return {"type": "file", "file": {"filename": filename(block), "file_data": f"data:{PDF};base64,{src[1]}"}}


def in_tool_result(block: dict) -> str:
    """The documents inside a tool_result as text (tool messages hold text
    only), each after a blank line; "" when it holds none."""
    items = block.get("content")
    if not isinstance(items, list):
        return ""
    return "".join("\n\n" + as_text(item) for item in items if item.get("type") == "document")


def as_text(block: dict) -> str:
    """A document for a model that reads only text: the text of a text
    document, the extracted text of a PDF under a note, or a note that the
    PDF (or URL) could not be passed on."""
    src = document_source(block)
    name = label(block)
    if src is None:
        return f"[The {name} document could not be read: unsupported source]"
    kind, value = src
    if kind == "text":
        if not value.strip():
            return f"[The {name} document is empty]"
        return f"[Document {name}]\n{value}" if name != "attached" else value
    if kind == "url":
        return f"[Document {name} at {value}: this model cannot open documents; its content was not sent]"
    text = pdf_text(value)
    if text is None:
        return f"[The {name} PDF could not be read (no extractable text or not a valid PDF); its content was not sent]"
    note = f"[Text extracted from the {name} PDF; layout and images are not included]"
    if len(text) > MAX_EXTRACTED_CHARS:
        text = text[:MAX_EXTRACTED_CHARS] + "\n[… the rest of the document was cut]"
    return f"{note}\n{text}"

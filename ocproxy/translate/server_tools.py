"""Anthropic server tools (``web_search_20250305``, ``web_fetch_20250910``).

The upstream, not the client, runs a server tool: Claude Code's WebSearch
tool sends a request whose only tool is ``web_search`` and reads the
``server_tool_use`` / ``web_search_tool_result`` blocks of the answer. A
function-calling upstream handed it as a function would "call" it and
nobody could run it, so server tools are never function tools here: they
become the upstream's own search (the Responses ``web_search`` tool,
Gemini's ``google_search`` grounding) and its findings come back as the
blocks Claude Code reads.

Pure: dicts in, dicts out.
"""

from __future__ import annotations

from collections.abc import Callable

WEB_SEARCH = "web_search"
WEB_FETCH = "web_fetch"
_KINDS = {"web_search_": WEB_SEARCH, "web_fetch_": WEB_FETCH}


def kind(tool: dict) -> str | None:
    """``web_search`` or ``web_fetch`` for a server tool definition (its
    ``type`` is the versioned name, ``web_search_20250305``); None else."""
    kind_ = tool.get("type")
    if not isinstance(kind_, str):
        return None
    for prefix, name in _KINDS.items():
        if kind_.startswith(prefix):
            return name
    return None


def requested(tools: list[dict]) -> dict[str, dict]:
    """The server tools a request carries, by kind (the first of each)."""
    found: dict[str, dict] = {}
    for tool in tools:
        name = kind(tool)
        if name and name not in found:
            found[name] = tool
    return found


def _strings(value) -> list[str]:
    return [v for v in value if isinstance(v, str) and v] if isinstance(value, list) else []


def responses_tools(tools: list[dict]) -> list[dict]:
    """The Responses API built-in ``web_search`` tool for a request's server
    tools (it also opens pages, so it stands in for web_fetch too), with
    the client's allowed domains and approximate location."""
    found = requested(tools)
    if not found:
        return []
    entry: dict = {"type": "web_search"}
    search = found.get(WEB_SEARCH) or {}
    domains = _strings(search.get("allowed_domains")) or _strings((found.get(WEB_FETCH) or {}).get("allowed_domains"))
    if domains:
        entry["filters"] = {"allowed_domains": domains}
    location = search.get("user_location")
    if isinstance(location, dict):
        entry["user_location"] = {k: v for k, v in location.items() if isinstance(v, str) and v} | {
            "type": "approximate"
        }
    return [entry]


def gemini_tools(tools: list[dict]) -> list[dict]:
    """Gemini's grounding tools: ``google_search`` for web_search,
    ``url_context`` for web_fetch."""
    found = requested(tools)
    out: list[dict] = []
    if WEB_SEARCH in found:
        out.append({"google_search": {}})
    if WEB_FETCH in found:
        out.append({"url_context": {}})
    return out


def result_entry(url: str, title: str | None) -> dict:
    """One ``web_search_result`` item. Only Anthropic can make the
    ``encrypted_content`` it replays; Claude Code reads ``title`` and
    ``url``."""
    return {"type": "web_search_result", "url": url, "title": title or url, "encrypted_content": "",
            "page_age": None}


def search_blocks(tool_id: str, query: str, results: list[dict]) -> list[dict]:
    """The ``server_tool_use`` block of one search and its
    ``web_search_tool_result``."""
    return [
        {"type": "server_tool_use", "id": tool_id, "name": WEB_SEARCH, "input": {"query": query}},
        {"type": "web_search_tool_result", "tool_use_id": tool_id, "content": results},
    ]


class SearchResults:
    """The searches of one answer and the pages they found, in the order
    the upstream reported them.

    Found pages come from two places: the search itself (Responses'
    ``action.sources``, Gemini's ``groundingChunks``) and the citations in
    the text (Responses' ``url_citation`` annotations). A citation of a page
    no search listed is reported after the text, in one more result block
    of the last search, since it arrives only with the text.
    """

    def __init__(self, ids: Callable[[str], str]):
        self._ids = ids
        self._listed: set[str] = set()
        self._titles: dict[str, str] = {}
        self._late: list[dict] = []
        self.last_id: str | None = None
        self.count = 0

    def search(self, query: str, pages: list[tuple[str, str | None]]) -> list[dict]:
        """The two blocks of one search that found ``pages`` ``(url, title)``."""
        tool_id = self._ids("srvtoolu_")
        self.last_id = tool_id
        self.count += 1
        results = []
        for url, title in pages:
            if url in self._listed:
                continue
            self._listed.add(url)
            results.append(result_entry(url, title or self._titles.get(url)))
        return search_blocks(tool_id, query, results)

    def cited(self, url, title) -> None:
        """A page the text cites."""
        if not isinstance(url, str) or not url:
            return
        if isinstance(title, str) and title:
            self._titles.setdefault(url, title)
        if url not in self._listed:
            self._listed.add(url)
            self._late.append(result_entry(url, title if isinstance(title, str) else None))

    def usage(self, usage: dict) -> dict:
        """``usage`` with the searches counted as Anthropic counts them."""
        if self.count:
            usage = {**usage, "server_tool_use": {"web_search_requests": self.count}}
        return usage

    def late_block(self) -> dict | None:
        """The result block of cited pages no search listed (None when
        there are none, or no search to attach them to)."""
        if not self._late or self.last_id is None:
            return None
        block = {"type": "web_search_tool_result", "tool_use_id": self.last_id, "content": self._late}
        self._late = []
        return block

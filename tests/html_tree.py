"""A small DOM of a written page (html.parser), for the page tests."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

_VOID = {
    "meta",
    "link",
    "img",
    "input",
    "br",
    "hr",
    "source",
    "col",
    "area",
    "base",
    "wbr",
    "line",
    "polygon",
    "path",
    "rect",
    "circle",
}  # svg shapes are written self-closed


class Node:
    def __init__(self, tag: str, attrs: dict, parent: Node | None = None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    def text(self) -> str:
        """The text inside, whitespace runs collapsed to one space."""
        raw = "".join(c if isinstance(c, str) else c.text() for c in self.children)
        return " ".join(raw.split())

    def all(self, tag: str | None = None, **attrs) -> list[Node]:
        """Descendants with this tag and these attribute values (``cls`` for class words)."""
        found = []
        for child in self.children:
            if isinstance(child, str):
                continue
            want_class = attrs.get("cls")
            ok = (tag is None or child.tag == tag) and all(
                child.attrs.get(k.replace("_", "-")) == v for k, v in attrs.items() if k != "cls"
            )
            if want_class and want_class not in (child.attrs.get("class") or "").split():
                ok = False
            if ok:
                found.append(child)
            found += child.all(tag, **attrs)
        return found

    def one(self, tag: str | None = None, **attrs) -> Node:
        found = self.all(tag, **attrs)
        assert len(found) == 1, f"{len(found)} <{tag} {attrs}>"
        return found[0]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = self.node = Node("#document", {})

    def handle_starttag(self, tag, attrs) -> None:
        node = Node(tag, dict(attrs), self.node)
        self.node.children.append(node)
        if tag not in _VOID:
            self.node = node

    def handle_startendtag(self, tag, attrs) -> None:
        self.node.children.append(Node(tag, dict(attrs), self.node))

    def handle_endtag(self, tag) -> None:
        node = self.node
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.node = node.parent

    def handle_data(self, data) -> None:
        self.node.children.append(data)


def parse(path: Path) -> Node:
    builder = _Builder()
    builder.feed(Path(path).read_text(encoding="utf-8"))
    return builder.root


def table_rows(doc: Node) -> list[Node]:
    """The image rows of a viewer page (tbody), in order."""
    return doc.one("tbody").all("tr")

"""The README stands alone: every relative link it makes points at a file or folder of this repository."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def relative_links(markdown: str) -> list[str]:
    return [target for target in LINK.findall(markdown) if not re.match(r"[a-z][a-z0-9+.-]*:", target)]


def test_every_relative_link_of_the_readme_exists_in_the_repository():
    links = relative_links((ROOT / "README.md").read_text())

    assert links, "the README links to no file: this test would check nothing"
    for link in links:
        target = (ROOT / link.split("#", 1)[0]).resolve()
        assert target.is_relative_to(ROOT), f"{link} points outside the repository"
        assert target.exists(), f"{link} does not exist"


def test_links_to_the_web_and_anchors_are_not_taken_for_files():
    markdown = "[a](docs/providers.md#kdocs) [b](https://aws.amazon.com/lambda/pricing/) [c](mailto:x@example.com)"

    assert relative_links(markdown) == ["docs/providers.md#kdocs"]

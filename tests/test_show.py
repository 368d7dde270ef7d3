from helpers import collate, show


def test_source_is_the_helpers_own_code_fenced_for_the_page_and_plain_elsewhere():
    shown = show.source(collate.make_collator, collate.batch_seed)
    assert shown._repr_markdown_().startswith("```python\ndef make_collator(") and shown._repr_markdown_().endswith("\n```")
    assert repr(shown).startswith("def make_collator(") and "def batch_seed(" in repr(shown)
    assert "<style" not in shown._repr_markdown_()  # no style sheet leaking into the page


def test_markdown_prints_as_its_text():
    assert repr(show.markdown("**bold** 3.0x")) == "**bold** 3.0x"

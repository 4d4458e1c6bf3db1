"""The settings table of docs/settings.md is the one ``shared/settings.py`` renders, so the two cannot drift.

A setting added, renamed or re-described in ``Settings`` fails this test until docs/settings.md is
regenerated; so does a hand edit of the table.
"""

from __future__ import annotations

import difflib

import pytest

from shared.settings import PROJECT_ROOT, Settings
from shared.settings_table import END, REGENERATE, START, env_name, markdown_table, replace_table

SETTINGS_DOC = PROJECT_ROOT / "docs" / "settings.md"


def test_settings_doc_table_is_the_generated_one() -> None:
    text = SETTINGS_DOC.read_text()
    assert START in text and END in text, f"docs/settings.md has no {START} ... {END} block: {REGENERATE}"
    in_doc = text.split(START, 1)[1].split(END, 1)[0].strip()
    generated = markdown_table().strip()
    diff = "\n".join(difflib.unified_diff(
        in_doc.splitlines(), generated.splitlines(), "docs/settings.md", "shared/settings.py", lineterm=""
    ))  # fmt: skip
    assert in_doc == generated, f"docs/settings.md's settings table differs from Settings: {REGENERATE}\n{diff}"


def test_every_setting_has_a_row_named_by_the_variable_it_is_read_from() -> None:
    rows = [line for line in markdown_table().splitlines() if line.startswith("| `")]
    names = [row.split("`")[1] for row in rows]
    assert names == [env_name(name, field) for name, field in Settings.model_fields.items()]
    assert "REDIS_URL" in names and "LOG_FORMAT" in names and "CAPTCHAOCR_WAIT_TIMEOUT_S" in names
    assert all(field.description for field in Settings.model_fields.values()), "every setting is described"


def test_the_named_variables_are_the_ones_settings_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {"redis_url": "redis://example:1/0", "wait_timeout_s": "3.5", "log_format": "json"}
    for name, value in values.items():
        monkeypatch.setenv(env_name(name, Settings.model_fields[name]), value)
    settings = Settings()
    read = (settings.redis_url, settings.wait_timeout_s, settings.log_format)
    assert read == ("redis://example:1/0", 3.5, "json")


def test_replace_table_keeps_the_rest_of_the_doc() -> None:
    text = f"# Title\n\nbefore\n\n{START}\nold table\n{END}\n\nafter\n"
    replaced = replace_table(text, "| new |")
    assert replaced == f"# Title\n\nbefore\n\n{START}\n| new |\n{END}\n\nafter\n"

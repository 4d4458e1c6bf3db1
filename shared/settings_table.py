"""The settings table of docs/settings.md, rendered from the ``Settings`` model so the two cannot drift.

    python -m shared.settings_table            # print the table
    python -m shared.settings_table --write    # replace it in docs/settings.md, between the marker comments

Defaults come from the model's fields, never from the environment, so the table is the same on every
machine; tests/unit/test_readme_settings.py fails when docs/settings.md holds another table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from pydantic import AliasChoices
from pydantic.fields import FieldInfo

from shared.settings import PROJECT_ROOT, Settings

START = "<!-- settings:start -->"
END = "<!-- settings:end -->"
REGENERATE = "regenerate it with `.venv/bin/python -m shared.settings_table --write`"
SETTINGS_DOC = PROJECT_ROOT / "docs" / "settings.md"


def env_name(name: str, field: FieldInfo) -> str:
    """The environment variable a setting is read from: its first alias, else the prefixed name."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices) and isinstance(alias.choices[0], str):
        return alias.choices[0]
    if isinstance(alias, str):
        return alias
    return f"{Settings.model_config.get('env_prefix', '')}{name}".upper()


def default_text(field: FieldInfo) -> str:
    """The default as a user would write it in the environment (a computed one says how it is computed)."""
    extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
    if field.default_factory is not None:
        return str(extra.get("default_text", "(computed)"))
    value = field.default
    if value is None:
        return "(unset)"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, tuple | list):
        return f"`{','.join(map(str, value))}`" if value else "(empty)"
    if isinstance(value, Path) and value.is_relative_to(PROJECT_ROOT):
        return f"`{value.relative_to(PROJECT_ROOT)}`"
    return f"`{value}`"


def markdown_table() -> str:
    """One row per setting, in the model's order: variable, default, description."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        # Escaped so that "|" cannot end a cell and "<state_dir>" is not swallowed as an HTML tag.
        description = (field.description or "").replace("|", "\\|").replace("<", "&lt;")
        rows.append(f"| `{env_name(name, field)}` | {default_text(field)} | {description} |")
    return "\n".join(rows) + "\n"


def replace_table(text: str, table: str) -> str:
    """``text`` with whatever stands between the markers replaced by ``table``."""
    before, found_start, rest = text.partition(START)
    _, found_end, after = rest.partition(END)
    if not (found_start and found_end):
        raise ValueError(f"no {START} ... {END} block to replace")
    return f"{before}{START}\n{table.strip()}\n{END}{after}"


def main() -> None:
    parser = argparse.ArgumentParser(description="Render the settings table from shared/settings.py.")
    parser.add_argument("--write", action="store_true", help="replace the table in docs/settings.md")
    args = parser.parse_args()
    if args.write:
        SETTINGS_DOC.write_text(replace_table(SETTINGS_DOC.read_text(), markdown_table()))
        print(f"wrote the settings table into {SETTINGS_DOC}")
    else:
        print(markdown_table(), end="")


if __name__ == "__main__":
    main()

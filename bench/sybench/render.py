"""Config templates: `{{NAME}}` placeholders filled from a dict, with block-aware indentation.

A placeholder alone on its line (after indentation) takes a multi-line value, every line of it
indented like the placeholder, so that YAML snippets land at the right depth. `{{INCLUDE f}}`
inserts the file F (relative to the snippet's folder) the same way, which is how two systems'
configs share one Lua script.

A scenario's snippet file for a system fills that system's default slot. A snippet that needs
to fill more than one slot marks each part with a line `#@slot NAME`; text before the first
marker goes to the default slot.
"""
import re
from pathlib import Path

PLACEHOLDER = re.compile(r"\{\{([A-Z][A-Z0-9_]*)(?: ([^}]+))?\}\}")


class TemplateError(Exception):
    pass


def _indent_block(value, indent):
    lines = value.rstrip("\n").split("\n")
    return "\n".join((indent + line) if line.strip() else "" for line in lines)


def render(text, values, include_dir=None):
    """TEXT with every {{NAME}} replaced by VALUES[NAME] and {{INCLUDE f}} by the file f."""

    def value_of(match):
        name, arg = match.group(1), match.group(2)
        if name == "INCLUDE":
            if include_dir is None:
                raise TemplateError(f"{{{{INCLUDE {arg}}}}} with no folder to include from")
            return (Path(include_dir) / arg.strip()).read_text()
        if name not in values:
            raise TemplateError(f"no value for {{{{{name}}}}}")
        return str(values[name])

    out = []
    for line in text.split("\n"):
        stripped = line.strip()
        whole = PLACEHOLDER.fullmatch(stripped)
        if whole:
            indent = line[: len(line) - len(line.lstrip())]
            out.append(_indent_block(value_of(whole), indent))
        else:
            out.append(PLACEHOLDER.sub(lambda m: value_of(m), line))
    return "\n".join(out)


def snippet_slots(path, default_slot):
    """The slots a snippet file fills: {slot name: text}. Includes are resolved later, against
    the snippet's folder."""
    slots = {}
    current = default_slot
    buf = []
    for line in Path(path).read_text().split("\n"):
        m = re.fullmatch(r"\s*#@slot ([A-Z][A-Z0-9_]*)\s*", line)
        if m:
            if "".join(buf).strip():
                slots[current] = "\n".join(buf).strip("\n")
            current, buf = m.group(1), []
        else:
            buf.append(line)
    if "".join(buf).strip():
        slots[current] = "\n".join(buf).strip("\n")
    return slots

"""Reading a vault's committed outputs back: ``indicators study`` (SPEC 13) and ``indicators chart`` (SPEC 14)."""

from pathlib import Path

from ..errors import ConfigError


def write_page(out: Path, text: str, option: str) -> None:
    """Write a self-contained HTML page whole (a temporary file renamed over ``out``); ``option`` names
    the command-line option that chose ``out``, for the message when it cannot be written."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text, encoding="utf-8", newline="\n")
        tmp.replace(out)
    except OSError as exc:
        raise ConfigError(f"{option} {out}: cannot write ({exc.strerror})") from None

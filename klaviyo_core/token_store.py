"""Where a refresh token that Klaviyo rotated goes, so that the next run can still refresh.

Klaviyo may answer a refresh with a new refresh token and retire the old one. As Singer taps with rotating
tokens do, the tap writes the new one back into the `--config` file the old one came from: atomically (a
temporary file in the same directory, then `os.replace`), with the file's mode kept and every other key
left as it was. Where no such file exists (settings from the environment, `--config ENV`, a config dict, or
Meltano's temporary copy of its settings) a warning says what to update. The token itself is never logged.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import click

# Where the `--config` paths of this invocation are kept: the click context's `meta`, shared by the command
# and whatever it calls (the SDK reads the files and hands the tap only the merged settings).
CONFIG_FILES_KEY = "tap_klaviyo.config_files"
SETTING = "refresh_token"
# Meltano writes each plugin's settings to `<.meltano>/run/<plugin>/tap.<uuid>.config.json` for one run.
_MELTANO_CONFIG = re.compile(r"^tap\.[0-9a-fA-F-]{8,}\.config\.json$")


def remember_config_files(ctx: click.Context, values: Iterable[str]) -> None:
    """Called with the raw `--config` values (`ENV` means environment variables, not a file)."""
    ctx.meta[CONFIG_FILES_KEY] = tuple(Path(value) for value in values if value != "ENV")


def config_files_of_this_run() -> tuple[Path, ...]:
    """The `--config` files of the running command line (none when the tap is built in code)."""
    ctx = click.get_current_context(silent=True)
    return tuple(ctx.meta.get(CONFIG_FILES_KEY, ())) if ctx is not None else ()


def source_file(refresh_token: str, config_files: Iterable[Path]) -> Path | None:
    """The file the configured refresh token came from: the last one that sets it (later files win), if
    its value is the one in use (the environment may have overridden it)."""
    for path in reversed(tuple(config_files)):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and SETTING in data:
            return path if data[SETTING] == refresh_token else None
    return None


def _replace_value(text: str, data: Mapping[str, Any], token: str) -> str | None:
    """The file's text with only the refresh token's value changed, when that can be done exactly."""
    pattern = re.compile(rf'("{SETTING}"\s*:\s*)"(?:[^"\\]|\\.)*"')
    if len(pattern.findall(text)) != 1:
        return None
    replaced = pattern.sub(lambda m: m.group(1) + json.dumps(token), text)
    with contextlib.suppress(ValueError):
        if json.loads(replaced) == data:
            return replaced
    return None


def write_refresh_token(path: Path, token: str) -> None:
    """Replace the refresh token in a JSON config file atomically, keeping its mode and its other keys."""
    target = path.resolve()
    text = target.read_text(encoding="utf-8")
    data = json.loads(text)
    if not isinstance(data, dict):
        msg = "not a JSON object"
        raise ValueError(msg)
    data[SETTING] = token  # an existing key keeps its place
    new_text = _replace_value(text, data, token)
    if new_text is None:
        indent = 2 if "\n" in text.strip() else None
        new_text = json.dumps(data, indent=indent) + ("\n" if text.endswith("\n") else "")
    mode = stat.S_IMODE(target.stat().st_mode)
    fd, temp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as sink:
            sink.write(new_text)
            sink.flush()
            os.fsync(sink.fileno())
        os.chmod(temp, mode)
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


class RefreshTokenStore:
    """Receives each rotated refresh token: saves it to its config file, or warns (once) that it cannot."""

    def __init__(
        self,
        refresh_token: str,
        config_files: Iterable[Path],
        logger: logging.Logger,
        environ: Mapping[str, str] = os.environ,
    ) -> None:
        self.path = source_file(refresh_token, config_files)
        self.logger = logger
        self.meltano = environ.get("MELTANO_EXTRACTOR_NAME")
        self.warned = False

    def __call__(self, token: str) -> None:
        path = self.path
        if path is not None and not (self.meltano and _MELTANO_CONFIG.match(path.name)):
            try:
                write_refresh_token(path, token)
            except (OSError, ValueError) as exc:
                self._warn(f"it could not be written to {path} ({type(exc).__name__}); update refresh_token there")
            else:
                self.logger.info("Klaviyo rotated the OAuth refresh token: saved the new one to %s", path)
            return
        if self.meltano:
            where = f"Meltano's setting (meltano config set {self.meltano} refresh_token ...)"
        else:
            where = "refresh_token where it is configured (it did not come from a --config file)"
        self._warn(f"the tap cannot save it; update {where} with a new one from your app's OAuth flow")

    def _warn(self, what: str) -> None:
        if not self.warned:
            self.warned = True
            self.logger.warning(
                "Klaviyo rotated the OAuth refresh token for this run, and %s: the old one may stop working", what
            )

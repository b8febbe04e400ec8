"""How much one chat request may ask of a service, checked before it reaches a replica.

A replica runs one batch at a time, so one request with a huge prompt or a huge ``max_output_tokens`` would
hold every other caller of the service. The platform refuses, with a 400 that names the limit:

- more than ``max_prompt_chars()`` characters of message content in all (a setting,
  ``QFRUN_LOCAL_MAX_PROMPT_CHARS``, default 20,000: Qianfan's pages state their limits per model, and a
  custom service's only documented one is the last message's 3,000 tokens [S7], which the replica checks
  with its tokenizer);
- more than ``MAX_MESSAGES`` messages;
- ``max_output_tokens`` (or ``max_tokens``) outside 1 to ``MAX_OUTPUT_TOKENS``;
- sampling numbers that are not finite numbers in their range, and a seed outside 0 to 2**32 - 1 (what
  torch's generator takes).
- ``stop`` that is not one string or a list of 1 to ``MAX_STOPS`` strings of 1 to ``MAX_STOP_CHARS``
  characters (OpenAI's API allows 4; Qianfan's pages captured so far give no limit).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import Any

PROMPT_CHARS_ENV = "QFRUN_LOCAL_MAX_PROMPT_CHARS"
DEFAULT_PROMPT_CHARS = 20_000
MAX_MESSAGES = 256
MAX_OUTPUT_TOKENS = 2048
MAX_SEED = 2**32 - 1
MAX_STOPS = 4  # stop strings per chat, as OpenAI's API allows
MAX_STOP_CHARS = 20  # characters per stop string, so matching one stays cheap while generating
# name: (low, high, whether low itself is allowed)
_RANGES: Mapping[str, tuple[float, float, bool]] = {
    "temperature": (0.0, 2.0, True),
    "top_p": (0.0, 1.0, False),
}


class ChatLimitError(ValueError):
    """A chat request over a limit or with a number out of range; the message names the field."""


def max_prompt_chars() -> int:
    """``$QFRUN_LOCAL_MAX_PROMPT_CHARS`` when it is a positive whole number, else 20,000."""
    raw = os.environ.get(PROMPT_CHARS_ENV, "").strip()
    return int(raw) if raw.isdigit() and int(raw) > 0 else DEFAULT_PROMPT_CHARS


def check_prompt(messages: list[dict[str, Any]]) -> None:
    if len(messages) > MAX_MESSAGES:
        raise ChatLimitError(f"'messages' has {len(messages)} messages; the limit is {MAX_MESSAGES}.")
    size = sum(len(message["content"]) for message in messages)
    limit = max_prompt_chars()
    if size > limit:
        raise ChatLimitError(
            f"the messages hold {size} characters; the limit is {limit} ({PROMPT_CHARS_ENV})."
        )


def check_numbers(data: Mapping[str, Any]) -> dict[str, Any]:
    """The sampling fields of a chat body, checked; ``max_tokens`` is read as ``max_output_tokens``."""
    checked: dict[str, Any] = {}
    for name, (low, high, low_ok) in _RANGES.items():
        value = data.get(name)
        if value is None:
            continue
        # math.isfinite of an int converts it to a float, which overflows for one of 309 digits or more.
        if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
            raise ChatLimitError(f"'{name}' must be a number, not {_shown(value)}.")
        if not (low <= value if low_ok else low < value) or value > high:
            raise ChatLimitError(f"'{name}' must be between {low:g} and {high:g}, not {_shown(value)}.")
        checked[name] = value
    seed = data.get("seed")
    if seed is not None:
        checked["seed"] = _whole("seed", seed, 0, MAX_SEED)
    tokens_name = "max_output_tokens" if "max_output_tokens" in data else "max_tokens"
    tokens = data.get(tokens_name)
    if tokens is not None:
        checked["max_tokens"] = _whole(tokens_name, tokens, 1, MAX_OUTPUT_TOKENS)
    return checked


def check_stop(data: Mapping[str, Any]) -> dict[str, Any]:
    """``stop`` of a chat body, checked: one string or a list of 1 to ``MAX_STOPS`` non-empty strings."""
    value = data.get("stop")
    if value is None:
        return {}
    stops = [value] if isinstance(value, str) else value
    if (
        not isinstance(stops, list)
        or not 1 <= len(stops) <= MAX_STOPS
        or not all(isinstance(stop, str) and 0 < len(stop) <= MAX_STOP_CHARS for stop in stops)
    ):
        raise ChatLimitError(
            f"'stop' must be a list of 1 to {MAX_STOPS} strings of 1 to {MAX_STOP_CHARS} characters, "
            f"not {_shown(value)}."
        )
    return {"stop": stops}


def _finite(value: int | float) -> bool:
    return isinstance(value, int) or math.isfinite(value)


def _whole(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ChatLimitError(f"'{name}' must be a whole number, not {_shown(value)}.")
    if not low <= value <= high:
        raise ChatLimitError(f"'{name}' must be between {low} and {high}, not {_shown(value)}.")
    return value


def _shown(value: Any) -> str:
    """A client's value in a message, short: an error must not echo a megabyte back."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10**12:
        return f"a number of {len(str(abs(value)))} digits"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."

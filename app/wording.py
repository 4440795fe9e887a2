"""How the app words what went wrong: for people, without a stack trace. The core records the facts (the
exception's class and message); the page says them in words here."""
from __future__ import annotations

KINDS = {"ConfigError": "invalid setting", "DataError": "data problem", "CheckpointError": "checkpoint problem",
         "EncoderError": "encoder problem", "MemoryError": "out of memory"}


def failure(error_type: str | None, message: str) -> str:
    """A run's failure (`error_type` = the exception's class name, None for a failure the trainer explained)."""
    if not error_type or error_type == "TrainingDiverged":
        return message
    what = KINDS.get(error_type)
    return f"{what}: {message}" if what else f"training failed ({error_type}): {message}"


def friendly_error(e: BaseException) -> str:
    """An exception as a message for people: what failed, in words."""
    for cls in type(e).__mro__:
        if cls.__name__ in KINDS:
            return f"{KINDS[cls.__name__]}: {e}"
    return f"training failed ({type(e).__name__}): {e}"

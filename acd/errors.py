"""The ACD's error for bad input (its own module so every part of the ACD can raise it without a cycle)."""


class AcdError(ValueError):
    """Bad input to the ACD (unknown queue, unknown agent ...): the message says what."""

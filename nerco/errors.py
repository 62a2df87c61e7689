"""Errors meant for the person at the keyboard.

Library code raises :class:`UserError` for problems the user can fix (a missing folder,
an unreadable checkpoint, missing CLIP weights). The command-line entry points catch it
and print its message as one line, without a traceback.
"""


class UserError(Exception):
    """A problem with the user's input, explained in one line that says what to do."""

"""One exception type for problems a user can fix (bad config, missing data, bad files).

Stage entry points catch it and print a single line naming the file, key or layer, then exit
non-zero; anything else is a bug and keeps its traceback.
"""


class ReptopoError(Exception):
    """A user-facing error: the message must say what was wrong and what was expected."""

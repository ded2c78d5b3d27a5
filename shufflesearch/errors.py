"""The one exception type for errors a user can cause (bad YAML, unknown names, missing data, ...)."""


class ShuffleSearchError(ValueError):
    """A user-facing error. Its message is one line naming the file, field and value at fault.

    The CLI prints the message alone and exits with code 2; library users catch it like a ValueError.
    """

"""The one exception type for problems with the user's input."""


class InputError(ValueError):
    """Raised for bad input: a message of one line that says what is wrong and how to fix it.

    The CLI turns it into that line on stderr and exit code 2.
    """

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))

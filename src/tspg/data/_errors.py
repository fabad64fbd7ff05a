"""The one exception type for problems with the user's input, worded for the API and for the command line."""

from __future__ import annotations

import re
from collections.abc import Mapping

# An option named in a message: `name` or `name=value` between backticks.
_OPTION = re.compile(r"`([A-Za-z_][A-Za-z0-9_.]*)(?:=([^`]*))?`")


class InputError(ValueError):
    """Raised for bad input: a message of one line that says what is wrong and how to fix it.

    Messages name options as the Python API spells them, between backticks in the raw text: ``"pass
    `allow_missing_labels=True`"`` reads ``pass allow_missing_labels=True`` in ``str(error)``, and
    :meth:`cli_message` turns the same option into ``--allow-missing-labels`` for the ``tspg`` command, which
    prints that line on stderr with exit code 2.
    """

    def __init__(self, message: str) -> None:
        self.raw = " ".join(str(message).split())
        super().__init__(_OPTION.sub(lambda m: m.group(0)[1:-1], self.raw))

    def cli_message(self, flags: Mapping[str, str | None] | None = None) -> str:
        """The message with each option as the command line spells it.

        Parameters
        ----------
        flags
            Option name -> flag where it is not ``--`` plus the name with ``-`` for ``_`` (a config field
            ``GeneratorConfig.x`` is looked up as itself, then as ``x``); None keeps the API's words (an option
            the command does not have).
        """
        flags = flags or {}

        def flag(m: re.Match) -> str:
            name, value = m.group(1), m.group(2)
            key = name if name in flags else name.split(".")[-1]
            if key in flags and flags[key] is None or (key not in flags and "." in name
                                                       and not name.startswith("GeneratorConfig.")):
                return m.group(0)[1:-1]
            cli = flags.get(key) or "--" + key.replace("_", "-")
            if value is None or value == "True":
                return cli
            return f"{cli} {value.strip(chr(39) + chr(34))}"

        return _OPTION.sub(flag, self.raw)

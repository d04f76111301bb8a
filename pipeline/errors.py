"""Errors a user can cause and fix: bad input, a missing file, a setting that contradicts
what is on disk. They all derive from :class:`UserError`; the command line catches that one
class and prints its message as one line, without a traceback, exiting with status 2.
Anything else is a bug and keeps its traceback."""

from __future__ import annotations


class UserError(Exception):
    """An error the user can fix; the message says where and what to do."""

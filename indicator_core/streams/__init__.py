"""The kinds of input stream: what each reads, how it parses, which events it makes.

A kind (:class:`.base.StreamKind`) says where its raw files are, how a chunk
of their lines is parsed, which stream object turns parsed lines into events,
which indicators it feeds (an indicator's ``consumes``) and which data-quality
log it keeps.  The runtime drives every kind the same way (files, cursors,
chunks, commits), so a new kind of input is one new module and one
registration through the ``register_input_kinds`` hook: the built-in ones,
``trades`` and ``books``, are registered by :mod:`indicator_core.builtin_kinds`, a plugin like
any other.

This package's ``__init__`` imports nothing, so that the hook specification
can name :class:`.base.StreamKind` without loading the kinds themselves.
"""

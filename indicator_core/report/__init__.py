"""Reading a vault's committed outputs back: ``indicators study`` (SPEC 13) and ``indicators chart`` (SPEC 14)."""

"""``indicators record``: the venues' public streams written as the raw files the indicators read (SPEC 20).

- :mod:`.venues` — what differs by venue: URLs, subscriptions, keepalive, how a push is routed to an
  instrument and a kind, its exchange time and trade ids, and the REST history that fills a hole;
- :mod:`.files` — whole-line appends to the day files of the vault's layout, fsynced on a timer, a torn
  last line (a crash mid-write) cut back at the next start, the last trade id read back;
- :mod:`.tape` — one instrument's trades across reconnects: the trades missed while disconnected are
  fetched and written in id order before the live ones, repeats dropped, what cannot be fetched a gap;
- :mod:`.log` — ``recorder.jsonl`` per instrument: connects, disconnects, backfills, gaps, and per minute
  the receive delay (receive time − exchange time);
- :mod:`.connection` — one venue's WebSocket connections: subscribe, keepalive, reconnect with backoff
  and jitter, OKX's 64008 hand-over to a new connection;
- :mod:`.recorder` — all of it for a config's ``[record]`` table, run until stopped.
"""

"""What the engine needs to know about one kind of input stream."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, ClassVar

from ..indicator import Indicator
from ..instruments import Instrument
from ..sources.files import Chunk, list_files
from ..storage import InstrumentKey, state_path


class StreamKind:
    """One kind of input; subclasses fill in the hooks.  Instances are stateless."""

    name: ClassVar[str] = ""
    counters: ClassVar[tuple[str, ...]] = ()
    parse_in_threads: ClassVar[bool] = True  # False for a pure-Python parser: threads would only fight for the GIL
    # chunks of this many times [run] batch_bytes: a kind whose chunk costs a fixed part to sum up (a few dozen
    # numpy calls) and whose lines hold few items reads larger ones
    batch_scale: ClassVar[int] = 1
    # True when the parser reads a chunk whose lines are a memoryview of a mapped file (read_chunks(mapped=True))
    reads_mapped: ClassVar[bool] = False
    # True when its files are read by the venue formats registered for it (sources.formats): the exchange
    # folder and the file name choose the parser
    venue_formats: ClassVar[bool] = False
    # False for a kind whose input is not raw files under the vault (records: other indicators' outputs); True
    # with reads_records: the runtime feeds its indicators through runtime.records after the file kinds
    reads_files: ClassVar[bool] = True
    reads_records: ClassVar[bool] = False
    # indicators whose committed records the stream itself reads (derivs: volume's closes); resetting one of
    # them resets the indicators of this kind too (`indicators reset` says so)
    reads_outputs: ClassVar[tuple[str, ...]] = ()
    # How the command line shows the kind: after an instrument's label in a run's summary (" books"), and the
    # columns of its table in `indicators status` as (header, row key, format spec); the row keys are those
    # status_fields gives.  The indicator column's header is status_title.
    label_suffix: ClassVar[str] = ""
    status_title: ClassVar[str] = "indicator"
    status_columns: ClassVar[tuple[tuple[str, str, str], ...]] = ()
    # the suffix of its quality log's state file name ({INST_ID}{suffix}.state.json): kinds share the folder
    state_suffix: ClassVar[str] = ""

    def root(self, cfg) -> str:
        """Folder of the raw files under the vault, e.g. ``raw/trades``."""
        raise NotImplementedError

    def patterns(self, cfg) -> list[str]:
        """File name patterns of one instrument's files (``{date}`` orders them)."""
        raise NotImplementedError

    def new_stream(self, inst: Instrument, cfg) -> Any:
        """A fresh stream: ``process(parsed, file_label, sink)``, ``close_by_clock``, ``to_state``, ``set_state``, ``counters``."""
        raise NotImplementedError

    def bind(self, stream: Any, vault: Path, key: InstrumentKey, cfg, enabled: set[str]) -> None:
        """Give a new stream what it reads besides its files (``enabled``: the indicators that run), before its
        saved state is restored; nothing by default (the derivs kind: the committed minute closes)."""

    def parser(self, cfg, inst_id: str, tolerance_minutes: int, now_ms: int) -> Callable[[Chunk], Any]:
        """A pure function of a chunk (it may run in a worker thread); ``now_ms`` is the pass's clock."""
        raise NotImplementedError

    def list_files(self, cfg, folder: Path, inst_id: str, cursors: list, formats: Any = None) -> list:
        """The instrument's files in stream order (:func:`indicator_core.sources.files.list_files`); with
        :attr:`venue_formats`, each with the format ``formats`` (a ``FormatTable``) chooses for it."""
        return list_files(folder, inst_id, self.patterns(cfg), cursors,
                          formats=formats if self.venue_formats else None, kind=self.name)

    def quality_log(self, inst: Instrument) -> Indicator:
        """The always-on data-quality consumer of this stream."""
        raise NotImplementedError

    def quality_state_file(self, vault: Path, key: InstrumentKey) -> Path:
        path = state_path(vault, "quality", key)
        return path.with_name(f"{key.inst_id}{self.state_suffix}.state.json") if self.state_suffix else path

    def summary_line(self, counters: dict[str, int]) -> str:
        """What an instrument's pass of this kind did, for the run's summary (after its label)."""
        return ", ".join(f"{counters.get(k, 0)} {k}" for k in self.counters)

    def summary_totals(self, total: Callable[[str], int]) -> str:
        """This kind's part of the run's closing line (``""``: nothing to say), ``total(counter)`` summed."""
        return ""

    def status_fields(self, state: dict[str, Any], cfg: Any, vault: Path, key: InstrumentKey) -> dict[str, Any]:
        """The fields of one state file's row in ``indicators status`` (its counters by default)."""
        counters = (state.get("stream") or {}).get("counters", {})
        return {"last_bar_utc": state.get("last_bar_utc"), **{k: int(counters.get(k, 0)) for k in self.counters}}

    def check(self, cfg, formats: Any) -> None:
        """Refuse (``ConfigError``) settings of this kind that only the loaded plugins can judge, e.g. file
        patterns no installed venue format reads; ``formats`` is the ``FormatTable``."""

    def fills_empty_bars(self, cfg) -> bool:
        """Whether minutes without an event are filled (part of every consumer's fingerprint)."""
        return False

    def fingerprint_extra(self, cfg, inst_id: str) -> dict[str, Any] | None:
        """What besides an indicator's params defines its output for this kind (None: nothing)."""
        return None

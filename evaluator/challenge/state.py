"""Resumable challenge progress: per-foreground outcomes appended to JSON lines, flushed every few seconds."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from evaluator.results.schema import CHALLENGE_COLUMNS
from in9_builder.atomic import atomic_write_text
from in9_builder.errors import In9Error

STATE_FLUSH_SECONDS = 2.0  # the longest a decided foreground waits in memory before it is saved


class ChallengeState:
    """Per-foreground outcomes appended to ``state_dir/outcomes-<rank>.jsonl``, flushed every few seconds.

    ``run.json`` holds the key of the run (model, weights, protocol, label mode, precision, data
    fingerprints); a state folder of another run is refused rather than silently mixed in. Batch size and
    reordering are not in the key: they change the cost, never the outcome.
    """

    def __init__(self, state_dir: Path, key: dict, rank: int = 0, flush_every: float | None = None) -> None:
        self.dir = Path(state_dir)
        self.key = key
        self.path = self.dir / f"outcomes-{rank}.jsonl"
        self.flush_every = STATE_FLUSH_SECONDS if flush_every is None else flush_every
        self._pending: list[dict] = []
        self._last_flush = time.monotonic()

    def claim(self) -> None:
        """Create the folder and its run.json, or check that an existing one belongs to this run."""
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = self.dir / "run.json"
        if not meta.exists():
            atomic_write_text(meta, json.dumps(self.key, indent=1, sort_keys=True))
        self.check()

    def check(self) -> None:
        meta = self.dir / "run.json"
        try:
            found = json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise In9Error(
                f"challenge state {meta}: unreadable ({exc}); delete {self.dir} to start over"
            ) from None
        if found != self.key:
            differ = sorted(k for k in set(found) | set(self.key) if found.get(k) != self.key.get(k))
            raise In9Error(
                f"challenge state {self.dir} belongs to another run (differs in "
                f"{', '.join(differ)}); delete it or use another output directory"
            )

    def load(self) -> dict[str, dict]:
        """Every outcome saved so far by any process, by fg_image_id (a torn last line is ignored)."""
        done: dict[str, dict] = {}
        for path in sorted(self.dir.glob("outcomes-*.jsonl")):
            for line in path.read_text().splitlines():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the line a killed run was writing
                if isinstance(row, dict) and set(row) == set(CHALLENGE_COLUMNS):
                    done[row["fg_image_id"]] = row
        return done

    def add(self, row: dict) -> None:
        self._pending.append(row)
        if time.monotonic() - self._last_flush >= self.flush_every:
            self.flush()

    def flush(self) -> None:
        if self._pending:
            with open(self.path, "a+b") as handle:
                handle.seek(0, os.SEEK_END)
                torn = handle.tell() > 0 and (handle.seek(-1, os.SEEK_END), handle.read(1))[1] != b"\n"
                # A killed run may have left a torn last line: start on a fresh one.
                text = "\n" * torn + "".join(json.dumps(row) + "\n" for row in self._pending)
                handle.write(text.encode())
                handle.flush()
                os.fsync(handle.fileno())
            self._pending = []
        self._last_flush = time.monotonic()

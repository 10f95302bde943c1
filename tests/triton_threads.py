"""Run the programs of an interpreted Triton grid at the same time, one thread each.

Triton's interpreter runs a grid's programs one after another, so a kernel whose programs wait
for each other (the persistent LSTM kernels' barriers and exchanges) can only be checked there
with one program per group. Inside :func:`concurrent_programs` the interpreter instead collects
every program of a launch and then runs them all in threads that share the kernel's memory:
the barriers really wait, the exchange buffers really carry other programs' values. The GIL
interleaves the threads (a waiting program spins in Python until the others catch up), which is
slow but exact. Reaches into the interpreter's internals (``GridExecutor`` and the builder's
``grid_idx``); :func:`supported` says whether this Triton has them.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
import time
from typing import Any, Iterator

import triton
import triton.language as tl  # noqa: F401  (the interpreter patches the modules a kernel's globals see)

# seconds each program waits per place in the grid before it starts: 0 = all at once (the GIL
# then interleaves them in whatever order the OS schedules); > 0 = program k starts k x this
# late, so the first runs ahead of its peers, the schedule that exposes a missing wait for sure
STAGGER_S = 0.0

try:
    from triton.runtime import interpreter as _itp
except Exception:  # pragma: no cover - depends on the Triton version
    _itp = None


def supported() -> bool:
    return (_itp is not None and hasattr(_itp, "GridExecutor") and hasattr(_itp, "interpreter_builder")
            and hasattr(_itp.interpreter_builder, "set_grid_idx")
            and tuple(int(v) for v in triton.__version__.split(".")[:2]) >= (3, 8))


@contextlib.contextmanager
def concurrent_programs() -> Iterator[None]:
    builder = _itp.interpreter_builder
    cls = type(builder)
    local = threading.local()
    had_inst = "grid_idx" in builder.__dict__
    inst_value = builder.__dict__.pop("grid_idx", None)
    cls_saved = cls.__dict__.get("grid_idx", None)
    # each thread its own program id (the builder is one shared object)
    cls.grid_idx = property(lambda self: getattr(local, "idx", None), lambda self, v: setattr(local, "idx", v))
    orig_init = _itp.GridExecutor.__init__

    def init(self: Any, fn: Any, *args: Any, **kwargs: Any) -> None:
        orig_init(self, fn, *args, **kwargs)
        pending: list[tuple[tuple[int, int, int], dict]] = []

        def collect(**call_args: Any) -> None:
            pending.append((builder.grid_idx, call_args))
            nx, ny, nz = builder.grid_dim
            if len(pending) < nx * ny * nz:
                return
            errors: list[BaseException] = []

            def run(order: int, idx: tuple[int, int, int], a: dict) -> None:
                local.idx = idx
                if STAGGER_S:  # off: no sleep(0) either, the threads' old schedule
                    time.sleep(STAGGER_S * order)
                try:
                    fn(**a)
                except BaseException as e:  # noqa: BLE001 - re-raised in the caller
                    errors.append(e)

            threads = [threading.Thread(target=run, args=(k, *p)) for k, p in enumerate(pending)]
            pending.clear()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                raise errors[0]

        collect.__signature__ = inspect.signature(fn)  # type: ignore[attr-defined]
        self.fn = collect

    _itp.GridExecutor.__init__ = init
    try:
        yield
    finally:
        _itp.GridExecutor.__init__ = orig_init
        if cls_saved is None:
            del cls.grid_idx
        else:  # pragma: no cover
            cls.grid_idx = cls_saved
        if had_inst:
            builder.__dict__["grid_idx"] = inst_value

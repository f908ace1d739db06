"""Photos read ahead in threads while workers run the model.

Reading a photo (the file or the network, then decoding it) overlaps the model's work on the ones
before it, and a bounded queue between the two keeps only a few decoded photos in memory, however
large the library. Threads suffice: PyTorch, the image decoders and file reads release the GIL.
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator, NamedTuple, Optional, Sequence, TypeVar

Item, Read, Result = TypeVar("Item"), TypeVar("Read"), TypeVar("Result")
READERS = 2
_POLL_SECONDS = 0.1  # how often a waiting thread checks whether the run has stopped


class _Raised(NamedTuple):
    exception: BaseException


def run_pipeline(items: Sequence[Item], read: Callable[[Item], Read], work: Callable[[Read], Result],
                 workers: int = 1, read_ahead: Optional[int] = None) -> Iterator[Result]:
    """`work(read(item))` for every item, yielded in the calling thread as each finishes: READERS
    threads read, `workers` threads work, and at most `read_ahead` read items (default two per
    worker) wait between them. An exception in any thread, KeyboardInterrupt included, stops the
    others and is raised here; closing the iterator early stops them too. A stopped thread
    finishes the item in hand first, so close this iterator (`contextlib.closing`) to wait for them."""
    todo: queue.SimpleQueue = queue.SimpleQueue()
    for item in items:
        todo.put(item)
    ready: queue.Queue = queue.Queue(read_ahead or 2 * workers)
    results: queue.Queue = queue.Queue()
    stop = threading.Event()

    def reading() -> None:
        while not stop.is_set():
            try:
                value = read(todo.get_nowait())
            except queue.Empty:
                return
            while not stop.is_set():
                try:
                    ready.put(value, timeout=_POLL_SECONDS)
                    break
                except queue.Full:
                    pass

    def working() -> None:
        while not stop.is_set():
            try:
                value = ready.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                continue
            results.put(work(value))

    def guarded(loop: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            try:
                loop()
            except BaseException as exc:  # handed to the calling thread, which raises it
                results.put(_Raised(exc))
                stop.set()
        return run

    threads = [threading.Thread(target=guarded(loop), daemon=True)
               for loop, count in ((reading, READERS), (working, workers)) for _ in range(min(count, len(items)))]
    for thread in threads:
        thread.start()
    try:
        for _ in items:
            result = results.get()
            if isinstance(result, _Raised):
                raise result.exception
            yield result
    finally:
        stop.set()
        for thread in threads:
            thread.join()

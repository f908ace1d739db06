"""The size of a thumbnail file, computed from its quantized coefficients instead of writing it.

The target-bpp search tries several rate settings (4.5 on average at 0.1-1 bpp), and jpeglib writes to paths
only, so sizing each try through a real file costs a libjpeg encode and a temporary file. The size of a baseline
JPEG with optimised Huffman tables (what `jpeg_file.write_thumbnail` writes) follows from symbol
counts alone. As libjpeg's `+OPTIMIZE_CODING` does, each component's DC differences and AC
run-length symbols are counted per Huffman table (luma table 0; Cb and Cr share table 1), code
lengths come from JPEG Annex K.2 (with libjpeg's reserved all-ones code) limited to 16 bits by
K.3, and the scan costs the sum of count x code length plus the magnitude bits. Everything but
byte stuffing is exact; tests/test_jpeg_size.py holds the estimate to the real file.
"""
from __future__ import annotations

import numpy as np

# libjpeg's header around our marker: SOI 2, JFIF APP0 18, two DQT 69, SOF0 19, four DHT
# 21 + their symbols, SOS 14, and EOI 2 after the scan (measured on a written file).
_FIXED_BYTES = 2 + 18 + 2 * 69 + 19 + 4 * 21 + 14 + 2
# Share of the scan's bytes that are 0xFF, each followed by a stuffed 0x00: measured 0.0005 to
# 0.004 on tests/test_jpeg_size.py's files, 0.003 to 0.004 on the shipped models' thumbnails at
# 0.3 bpp (random bits would give 1/256). The only estimated term.
_STUFFED_SHARE = 0.003
_MAX_CODE_LENGTH = 16
_EOB, _ZRL = 0x00, 0xF0


def _zigzag() -> np.ndarray:
    """Natural-order index (row * 8 + column) of each position in JPEG's zigzag scan."""
    rows, cols = np.divmod(np.arange(64), 8)
    diagonal = rows + cols
    along = np.where(diagonal % 2 == 1, rows, -rows)
    return np.lexsort((along, diagonal))


_ZIGZAG = _zigzag()


# JPEG's size category of each magnitude up to the largest DC difference (2 x 2047): the bits it
# needs, also the count of magnitude bits that follow its symbol.
_CATEGORY = np.frexp(np.arange(4096, dtype=np.float32))[1]


def optimal_code_lengths(counts: np.ndarray) -> np.ndarray:
    """Symbol counts (S,) -> the code length libjpeg's optimised Huffman table gives each (0: unused).

    Annex K.2 as libjpeg runs it: a pseudo-symbol of count 1 takes the longest code, so no real
    code is all ones; the two rarest trees merge (ties to the higher symbol), each merge adding a
    bit to every member. Annex K.3 then shortens codes over 16 bits, and lengths go back to the
    symbols in order of their unlimited length.
    """
    frequency = np.append(counts, 1).astype(np.int64)
    tree = np.arange(frequency.size)  # the symbol holding each symbol's tree's total count
    unlimited = np.zeros(frequency.size, np.int64)
    for _ in range(np.count_nonzero(frequency) - 1):
        live = np.flatnonzero(frequency)
        order = np.lexsort((-live, frequency[live]))
        first, second = live[order[0]], live[order[1]]
        frequency[first] += frequency[second]
        frequency[second] = 0
        unlimited[(tree == first) | (tree == second)] += 1
        tree[tree == second] = first
    per_length = np.bincount(unlimited, minlength=_MAX_CODE_LENGTH + 1)
    per_length[0] = 0
    for length in range(per_length.size - 1, _MAX_CODE_LENGTH, -1):
        while per_length[length] > 0:
            shorter = length - 2
            while per_length[shorter] == 0:
                shorter -= 1
            per_length[length] -= 2
            per_length[length - 1] += 1
            per_length[shorter + 1] += 2
            per_length[shorter] -= 1
    per_length[np.flatnonzero(per_length)[-1]] -= 1  # the pseudo-symbol's code
    used = np.flatnonzero(unlimited[:-1])
    lengths = np.zeros(counts.size, np.int64)
    lengths[used[np.lexsort((used, unlimited[used]))]] = np.repeat(np.arange(per_length.size), per_length)
    return lengths


def symbol_counts(coefficients: np.ndarray) -> tuple[list[np.ndarray], int]:
    """Quantized coefficients (3, bh, bw, 8, 8) -> (symbol counts of the four Huffman tables in
    the file's order: luma DC, luma AC, chroma DC, chroma AC; magnitude bits of the scan)."""
    blocks = np.take(coefficients.reshape(3, -1, 64), _ZIGZAG, axis=2)  # scan order, a fresh array
    dc_categories = _CATEGORY[np.abs(np.diff(blocks[:, :, 0].astype(np.int32), axis=1, prepend=0))]
    eobs = np.count_nonzero(blocks[:, :, -1] == 0, axis=1)  # blocks whose last coefficient is zero
    blocks[:, :, 0] = 0  # from here on, only AC coefficients count
    nonzero = np.flatnonzero(blocks != 0)  # flat indices, 64 per block, Y's blocks first
    # Zeros before each: back to the block's previous nonzero, or to its DC at position 0.
    runs = np.minimum(np.diff(nonzero, prepend=-64), nonzero & 63) - 1
    categories = _CATEGORY[np.abs(blocks.ravel()[nonzero])]
    first_chroma = np.searchsorted(nonzero, blocks[0].size)
    symbols = np.split((runs & 15) * 16 + categories, [first_chroma])
    ac = np.stack([np.bincount(table, minlength=256) for table in symbols])
    ac[:, _ZRL] += [long_runs.sum() for long_runs in np.split(runs >> 4, [first_chroma])]  # 16 zeros each
    ac[:, _EOB] += [eobs[0], eobs[1:].sum()]
    dc = [np.bincount(dc_categories[0], minlength=16), np.bincount(dc_categories[1:].ravel(), minlength=16)]
    return [dc[0], ac[0], dc[1], ac[1]], int(dc_categories.sum()) + int(categories.sum())


def thumbnail_file_bytes(coefficients: np.ndarray, marker_bytes: int) -> int:
    """Quantized coefficients (3, bh, bw, 8, 8) -> bytes of the file `write_thumbnail` would write,
    whose HyperThumb marker segment is `marker_bytes` long."""
    tables, scan_bits = symbol_counts(coefficients)
    scan_bits += sum(int(counts @ optimal_code_lengths(counts)) for counts in tables)
    scan_bytes = -(-scan_bits // 8)
    symbols = sum(np.count_nonzero(counts) for counts in tables)  # listed in the DHT segments
    return _FIXED_BYTES + marker_bytes + symbols + scan_bytes + round(scan_bytes * _STUFFED_SHARE)

"""Real bytes: encode a photo to a HyperThumb JPEG at a target bpp, and decode it back.

The method is the model's (`HyperThumbModel.analyze`, `quantize`, `decompress`); this module adds
what is about files: the JPEG container and its marker, the target-bpp search, the engines that
run the two networks, and tiles. The encoder runs once per photo; the bisection over the rate
setting t then quantizes and sizes each try in memory (`jpeg/size.py`) and writes the file once.
Large photos run in overlapping tiles (`tiling.py`): the encoder on the HR grid, the decoder on the
thumbnail's block grid. The QPM still sees the statistics of the whole thumbnail, so one pair of
tables serves the whole file, and the restored photo is written straight into a uint8 buffer.
"""
from __future__ import annotations

import io
import math
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from itertools import islice
from pathlib import Path
from typing import Callable, Iterable, Iterator, NamedTuple, Optional, Union

import numpy as np
import torch
from PIL import Image

from hyperthumb.codec.engines import ExportedNetwork, decoder_example, encoder_example, resolve_engine
from hyperthumb.codec.image_io import ImageSource, load_image, to_tensor
from hyperthumb.codec.runtime import Runtime, checked_device, release_freed_memory
from hyperthumb.codec.tiling import Window, run_tiled
from hyperthumb.errors import EncoderMismatchError, InvalidSettingError, InvalidThumbnailError
from hyperthumb.jpeg.file import read_thumbnail, read_thumbnail_header, write_thumbnail
from hyperthumb.jpeg.marker import ThumbnailMarker, with_frame_size
from hyperthumb.jpeg.metadata import PhotoMetadata, read_metadata
from hyperthumb.jpeg.size import thumbnail_file_bytes
from hyperthumb.models import differentiable_jpeg
from hyperthumb.models.model import BLOCK_GRID, HyperThumbModel, QuantizedThumbnail
from hyperthumb.models.pixels import pad_to_multiple

BPP_TOLERANCE = 0.05  # relative: what "hits the target" means
_SEARCH_RANGE = (-3.0, 3.0)  # training samples t in [-3, 1]; the QPM's gain extrapolates past 1
_SEARCH_STEPS = 18
DEFAULT_TILE = 2048  # largest HR tile side; photos up to 2048 * 2048 pixels run whole
# PyTorch's decoders stream over bands of rows and round them straight into the image (a 6144x4096
# decode peaked 0.27-0.45 GB above the process), so they run a 6K photo whole and skip the halos'
# recomputation and blending (0.3 s of a 1.9 s fast decode); the exported engines hold more
# (OpenVINO 1.9 GB at 6K whole) and keep `tile`.
DEFAULT_DECODE_TILE = 5120
DEFAULT_HALO = 128  # HR context on inner tile sides (4 JPEG blocks): > 50 dB seams, random weights
COEFFICIENT_SOURCES = ("file", "pixels")


class _ParsedThumbnail(NamedTuple):
    marker: ThumbnailMarker
    coefficients: Optional[torch.Tensor]  # int16 (1, 3, blocks_h, blocks_w, 8, 8) on the host; None: the pixel route
    luma_table: torch.Tensor  # int16 (1, 64), on the host
    chroma_table: torch.Tensor
    jpeg: bytes


@dataclass
class Thumbnail:
    """One encoded thumbnail: the real file and what it achieved."""

    jpeg: bytes
    encoder: str
    hr_size: tuple[int, int]  # (width, height) of the original photo
    bpp: float  # file bits / HR pixels
    target_bpp: Optional[float]
    rate_t: float
    luma_table: np.ndarray
    chroma_table: np.ndarray
    image: Image.Image  # the thumbnail as a JPEG viewer shows it

    @property
    def reached_target(self) -> bool:
        return self.target_bpp is None or abs(self.bpp - self.target_bpp) <= BPP_TOLERANCE * self.target_bpp

    def save(self, path: Union[str, os.PathLike]) -> None:
        Path(path).write_bytes(self.jpeg)


def read_thumbnail_bytes(source: Union[bytes, str, os.PathLike]) -> bytes:
    """Bytes as given, or a file's bytes; a missing or unreadable path is an InvalidThumbnailError."""
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    path = Path(source)
    if not path.exists():
        raise InvalidThumbnailError(f"no such file: {path}")
    if not path.is_file():
        raise InvalidThumbnailError(f"{path} is not a file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidThumbnailError(f"{path} cannot be read ({exc.strerror or exc})") from None


class HyperThumbCodec:
    """A trained model bound to one device, with file-level `encode` and `decode`.

    `tile` is the largest HR tile side (a multiple of 32); photos of more than tile * tile pixels
    run in tiles, others whole. None never tiles. `decode_tile` is the same for a decoder run by
    PyTorch; the exported engines decode in `tile`s. `engine` runs the encoder and decoder networks:
    "torch", "onnxruntime" or "openvino" (`engines.py`); None is torch, the fastest measured, unless
    `HYPERTHUMB_ENGINE` names another and no `runtime` (torch's) is given. `runtime`
    sets torch's precision, layout, compilation and tile batching (default: the measured best for
    the device). The exported engines choose their own precision unless a runtime without autocast
    asks for fp32, and use only its tile batching. `marker` is the model name its thumbnails carry
    and the one it accepts (default `name`): a fast decoder's is its encoder's checkpoint.
    `coefficients_from` is where a decode gets the file's integers: "file" (libjpeg reads them on
    the CPU, exactly) or "pixels" (the file decoded to pixels on the device, by nvJPEG on a GPU,
    then transformed and quantized again with the file's tables: the same integers except where
    the decoder's rounding moves one by half a table step, which happens only at small steps).
    """

    def __init__(self, model: HyperThumbModel, name: Optional[str] = None, device: Union[str, torch.device] = "cpu",
                 tile: Optional[int] = DEFAULT_TILE, halo: int = DEFAULT_HALO, runtime: Optional[Runtime] = None,
                 engine: Optional[str] = None, marker: Optional[str] = None,
                 decode_tile: Optional[int] = DEFAULT_DECODE_TILE, coefficients_from: str = "file"):
        if coefficients_from not in COEFFICIENT_SOURCES:
            raise InvalidSettingError(f"coefficients_from must be one of {', '.join(COEFFICIENT_SOURCES)}")
        multiple = model.config.hr_multiple
        for side in (tile, decode_tile):
            if side is not None and (side % multiple or side < 4 * halo):
                raise InvalidSettingError(f"tile {side} must be a multiple of {multiple} and at least {4 * halo}")
        if halo % multiple:
            raise InvalidSettingError(f"halo {halo} must be a multiple of {multiple}")
        self.device = checked_device(device)
        self.encoder_id = model.encoder_id()  # of the weights as given, before any engine converts them
        self.model = model.eval().to(self.device)
        self.name = name or model.config.encoder
        self.marker = marker or self.name
        self.tile, self.halo = tile, halo
        self.coefficients_from = coefficients_from
        requested = "torch" if engine is None and runtime else engine
        self.engine = resolve_engine(requested, self.device)
        self.decode_tile = decode_tile if self.engine == "torch" else tile
        self.runtime, self._decoder = self._prepare(self.model.decoder, self.engine, runtime, decoder_example())
        self._encoder_runtime, self._encoder = self._prepare(self.model.encoder, self.engine, runtime,
                                                             encoder_example(multiple))

    def _prepare(self, network: torch.nn.Module, engine: str, runtime: Optional[Runtime],
                 example: tuple) -> tuple[Runtime, Callable]:
        """(the runtime that feeds the network, the network on `engine`)."""
        if engine == "torch":
            runtime = runtime or Runtime.for_device(self.device)
            return runtime, runtime.prepare(network)
        fp32 = runtime is not None and runtime.autocast_dtype is None
        exported = ExportedNetwork(network, engine, example, fp32=fp32)
        return Runtime(batch=runtime.batch if runtime else 1), exported  # fp32 contiguous inputs

    @property
    def engine_precision(self) -> str:
        """The decoder's arithmetic, for reports: torch's autocast type, or what the engine chose
        (known after the first decode)."""
        name = (str(self.runtime.autocast_dtype or torch.float32).removeprefix("torch.") if self.engine == "torch"
                else self._decoder.precision or "not loaded yet")
        return {"float32": "fp32", "f32": "fp32", "bfloat16": "bf16", "float16": "fp16", "f16": "fp16"}.get(name, name)

    @property
    def scale(self) -> int:
        return self.model.config.scale

    @staticmethod
    def _tile_for(hr_height: int, hr_width: int, tile: Optional[int]) -> Optional[int]:
        """The HR tile side for a photo of this size, or None to run it whole."""
        if tile is None or hr_height * hr_width <= tile * tile:
            return None
        return tile

    @torch.inference_mode()
    def encode_thumbnail_tensor(self, hr: torch.Tensor) -> torch.Tensor:
        """Padded HR (N,3,H,W) -> thumbnail (N,3,H/s,W/s) before JPEG, in fp32."""
        return self.model.make_thumbnail(self._encoder_runtime.layout(hr.to(self.device)),
                                         self._encoder_runtime.autocast_dtype, self._encoder)

    def _encode_pixels(self, photo: np.ndarray) -> torch.Tensor:
        """uint8 photo (H,W,3) -> thumbnail (1,3,h,w) of the padded photo, tile by tile."""
        multiple = self.model.config.hr_multiple
        size = tuple(-(-side // multiple) * multiple for side in photo.shape[:2])
        thumbnail = np.empty((size[0] // self.scale, size[1] // self.scale, 3), np.float32)

        def run(windows: list[Window]) -> torch.Tensor:
            channels_last = self._encoder_runtime.channels_last
            crops = [pad_to_multiple(to_tensor(photo[window.slices()], self.device, channels_last), multiple)
                     for window in windows]
            batch = crops[0] if len(crops) == 1 else torch.cat(crops)  # cat would copy even one crop
            return self.encode_thumbnail_tensor(batch)

        run_tiled(run, size, thumbnail, Fraction(1, self.scale), self._tile_for(*size, self.tile), self.halo, multiple,
                  self._encoder_runtime.batch)
        return torch.from_numpy(thumbnail).permute(2, 0, 1).unsqueeze(0).contiguous().to(self.device)

    @torch.inference_mode()
    def encode(self, image: ImageSource, target_bpp: Optional[float] = 0.3, rate_t: Optional[float] = None,
               progress: Optional[Callable[[float], None]] = None, keep_metadata: bool = True) -> Thumbnail:
        """Photo -> Thumbnail at `target_bpp` (or at a fixed rate setting `rate_t`). The file keeps the
        photo's EXIF and ICC profile unless `keep_metadata` is False; its size counts them."""
        if target_bpp is None and rate_t is None:
            raise InvalidSettingError("give target_bpp or rate_t")
        if target_bpp is not None and not 0 < target_bpp < 24:
            raise InvalidSettingError(f"target bpp must be positive and below 24, got {target_bpp}")
        if target_bpp is None and not _SEARCH_RANGE[0] <= rate_t <= _SEARCH_RANGE[1]:
            raise InvalidSettingError(
                f"rate setting t must lie in {_SEARCH_RANGE[0]:g}..{_SEARCH_RANGE[1]:g}, got {rate_t}")
        loaded = load_image(image)
        metadata = PhotoMetadata.of_image(loaded) if keep_metadata else PhotoMetadata()
        photo = np.asarray(loaded)
        del loaded
        height, width = photo.shape[:2]
        analysis = self.model.analyze(self._encode_pixels(photo))
        del photo
        if progress:
            progress(0.5)
        marker = ThumbnailMarker(self.marker, self.scale, width, height, encoder_id=self.encoder_id)
        header_bytes = len(marker.to_bytes()) + len(metadata.segments())  # the file's size counts them too

        def quantize(t: float) -> QuantizedThumbnail:
            return self.model.quantize(analysis, torch.tensor([t], device=self.device))

        def sized(t: float) -> tuple[QuantizedThumbnail, float]:
            """The file's integers at t and the bpp of their file, sized in memory."""
            quantized = quantize(t)
            size = thumbnail_file_bytes(quantized.coefficients[0].cpu().numpy(), header_bytes)
            return quantized, size * 8 / (width * height)

        if target_bpp is None:
            quantized = quantize(rate_t)
        else:
            rate_t, quantized = self._search(sized, target_bpp)
        luma, chroma = (table.reshape(8, 8).cpu().numpy().astype(np.uint16)
                        for table in (quantized.luma_table, quantized.chroma_table))
        jpeg = write_thumbnail(quantized.coefficients[0].cpu().numpy(), luma, chroma, marker, metadata)
        image = Image.open(io.BytesIO(jpeg))  # what a viewer shows
        image.load()
        release_freed_memory()
        if progress:
            progress(1.0)
        return Thumbnail(jpeg=jpeg, encoder=self.name, hr_size=(width, height), bpp=len(jpeg) * 8 / (width * height),
                         target_bpp=target_bpp, rate_t=rate_t, luma_table=luma, chroma_table=chroma, image=image)

    @staticmethod
    def _search(sized: Callable[[float], tuple[QuantizedThumbnail, float]],
                target_bpp: float) -> tuple[float, QuantizedThumbnail]:
        """The t whose file size comes closest to the target (within 1% ends the search). File size
        falls as t rises and log(bpp) is close to linear in t, so each step is a secant step through
        the last two tries, kept inside the bracket found so far; where it would leave the bracket,
        or the last two tries sized alike, the step bisects instead. A target beyond the largest
        (all tables 1) or smallest (all 255) file ends the search there."""
        lo, hi = _SEARCH_RANGE
        best_t, best, best_error = lo, None, float("inf")
        t, previous, tried = (lo + hi) / 2, None, set()
        for _ in range(_SEARCH_STEPS):
            quantized, bpp = sized(t)
            tried.add(t)
            if abs(bpp - target_bpp) < best_error:
                best_t, best, best_error = t, quantized, abs(bpp - target_bpp)
            if best_error <= 0.01 * target_bpp:
                break
            gap = math.log(bpp / target_bpp)  # > 0: the file is too large, t must rise
            bound = 255 if gap > 0 else 1  # tables at it make the largest (1) or smallest (255) file
            tables = (quantized.luma_table, quantized.chroma_table)
            if t == _SEARCH_RANGE[gap > 0] or all(bool((table == bound).all()) for table in tables):
                break  # the target lies beyond what any t gives
            if gap > 0:
                lo = t
            else:
                hi = t
            secant = None
            if previous is not None and previous[1] != gap:
                secant = t - gap * (t - previous[0]) / (gap - previous[1])
                if not lo < secant < hi:  # beyond the bracket: its side's end if still untried
                    end = _SEARCH_RANGE[secant > hi]
                    secant = end if end in (lo, hi) and end not in tried else None
            previous = (t, gap)
            t = (lo + hi) / 2 if secant is None else secant
        return best_t, best

    def _run_decoder(self, channels: torch.Tensor, decoded: torch.Tensor,
                     out: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The decoder network through this codec's engine and memory layout (`out`: PyTorch's only)."""
        inputs = self.runtime.layout(channels), self.runtime.layout(decoded)
        return self._decoder(*inputs) if out is None else self._decoder(*inputs, out=out)

    @torch.inference_mode()
    def decode(self, source: Union[bytes, str, os.PathLike]) -> Image.Image:
        """HyperThumb JPEG (bytes or path) -> the restored HR photo at its original size, carrying
        the photo's EXIF and ICC profile where the file kept them (`save_options` writes them)."""
        parsed = self._parse(source)
        pixels = self._restore_parsed(parsed)
        if pixels.device.type != "cpu":  # page-locked, so the pixels cross at full speed (PyTorch reuses these)
            pixels = torch.empty(pixels.shape, dtype=torch.uint8, pin_memory=True).copy_(pixels)
        image = read_metadata(parsed.jpeg).attach(Image.fromarray(np.ascontiguousarray(pixels.numpy()), "RGB"))
        release_freed_memory()
        return image

    @torch.inference_mode()
    def decode_tensor(self, source: Union[bytes, str, os.PathLike]) -> torch.Tensor:
        """HyperThumb JPEG (bytes or path) -> the restored photo as uint8 (3,H,W) on the codec's
        device, a view of pixel-major (H,W,3) memory: what a GPU pipeline takes without a trip
        through the host."""
        return self._on_device(self._restore(source))

    @torch.inference_mode()
    def decode_stream(self, sources: Iterable[Union[bytes, str, os.PathLike]],
                      workers: int = 4) -> Iterator[torch.Tensor]:
        """`decode_tensor` over a stream of thumbnails, in order: up to `workers` threads read the next
        files on the CPU, in parallel, while the device restores the current one, so a frame costs
        the longer of one restore and a `workers`-th of a read, not their sum."""
        sources = iter(sources)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            pending = deque(pool.submit(self._parse, source) for source in islice(sources, workers + 1))
            while pending:
                parsed = pending.popleft().result()
                for source in islice(sources, 1):
                    pending.append(pool.submit(self._parse, source))
                yield self._on_device(self._restore_parsed(parsed))

    def _on_device(self, pixels: torch.Tensor) -> torch.Tensor:
        return pixels.to(self.device).permute(2, 0, 1)

    def _parse(self, source: Union[bytes, str, os.PathLike]) -> _ParsedThumbnail:
        """The file read and checked against this codec, its coefficients ready to cross to the
        device (on the pixel route, only its header: the device decodes the rest)."""
        jpeg = read_thumbnail_bytes(source)
        parsed = read_thumbnail_header(jpeg) if self.coefficients_from == "pixels" else read_thumbnail(jpeg)
        marker = parsed.marker
        if marker.encoder != self.marker:
            raise InvalidThumbnailError(
                f"this thumbnail was made by the {marker.encoder!r} model, not {self.marker!r}")
        if marker.scale != self.scale:
            raise InvalidThumbnailError(f"thumbnail scale {marker.scale} does not match the model's {self.scale}")
        if marker.encoder_id and marker.encoder_id != self.encoder_id:
            raise EncoderMismatchError(
                f"this thumbnail was made by the {marker.encoder!r} encoder {marker.encoder_id}, and the "
                f"{self.marker!r} checkpoint loaded here has encoder {self.encoder_id}: load the checkpoint it was "
                f"made with (the Hub revision of that time, HYPERTHUMB_HUB_REVISION, or the folder kept from "
                f"before the retraining, load_model({self.marker!r}, source=FOLDER))")
        coefficients = None
        if self.coefficients_from == "file":
            coefficients = torch.from_numpy(parsed.coefficients).unsqueeze(0)
            if self.device.type == "cuda":  # page-locked: the copy to the device skips a pageable staging copy
                coefficients = coefficients.pin_memory()
        tables = [torch.from_numpy(table.astype(np.int16)).reshape(1, 64)
                  for table in (parsed.luma_table, parsed.chroma_table)]
        return _ParsedThumbnail(marker, coefficients, *tables, jpeg)

    def _coefficients_of_pixels(self, parsed: _ParsedThumbnail, luma: torch.Tensor,
                                chroma: torch.Tensor) -> torch.Tensor:
        """The file's integers again, from its pixels decoded on this codec's device."""
        from torchvision.io import ImageReadMode, decode_jpeg  # 1.5 s to import: only this route needs it

        width, height = parsed.marker.padded_size  # every block, the padding's included
        whole_grid = with_frame_size(parsed.jpeg, width, height)
        try:
            rgb = decode_jpeg(torch.frombuffer(bytearray(whole_grid), dtype=torch.uint8), mode=ImageReadMode.RGB,
                              device=self.device)
        except RuntimeError as exc:
            raise InvalidThumbnailError(f"the thumbnail JPEG cannot be decoded ({exc})") from None
        if tuple(rgb.shape[1:]) != (height, width):
            raise InvalidThumbnailError(f"the thumbnail decodes to {rgb.shape[2]}x{rgb.shape[1]} pixels, not the "
                                        f"{width}x{height} its marker implies")
        coefficients = differentiable_jpeg.image_to_coefficients(rgb.unsqueeze(0).float() / 255.0)
        tables = differentiable_jpeg.component_tables(luma.float(), chroma.float())
        return differentiable_jpeg.quantize(coefficients, tables, differentiable=False).to(torch.int16)

    def _restore(self, source: Union[bytes, str, os.PathLike]) -> torch.Tensor:
        return self._restore_parsed(self._parse(source))

    def _restore_parsed(self, parsed: _ParsedThumbnail) -> torch.Tensor:
        """The restored photo as uint8 (H,W,3) where it was made: on the device when the decoder
        writes it whole, on the host when tiles are blended into it."""
        marker, luma, chroma = parsed.marker, parsed.luma_table.to(self.device), parsed.chroma_table.to(self.device)
        coefficients = (parsed.coefficients if parsed.coefficients is not None
                        else self._coefficients_of_pixels(parsed, luma, chroma))
        size = (coefficients.shape[2] * BLOCK_GRID, coefficients.shape[3] * BLOCK_GRID)
        tile = self._tile_for(size[0] * self.scale, size[1] * self.scale, self.decode_tile)
        if tile is None and self.engine == "torch":  # whole, the decoder writes the pixels itself
            pixels = torch.empty((size[0] * self.scale, size[1] * self.scale, 3), dtype=torch.uint8,
                                 device=self.device)
            quantized = QuantizedThumbnail(coefficients.to(self.device, non_blocking=True), luma, chroma)
            self.model.decompress(quantized, self.runtime.autocast_dtype, self._run_decoder,
                                  out=pixels.permute(2, 0, 1).unsqueeze(0))
            return pixels[:marker.height, :marker.width]
        restored = np.empty((marker.height, marker.width, 3), np.uint8)

        def run(windows: list[Window]) -> torch.Tensor:
            blocks = torch.cat([coefficients[:, :, rows, cols] for rows, cols in
                                (window.slices(BLOCK_GRID) for window in windows)])
            quantized = QuantizedThumbnail(blocks.to(self.device), luma, chroma)
            return self.model.decompress(quantized, self.runtime.autocast_dtype, self._run_decoder)[1]

        run_tiled(run, size, restored, Fraction(self.scale), tile and tile // self.scale,
                  self.halo // self.scale, BLOCK_GRID, self.runtime.batch)
        return torch.from_numpy(restored)

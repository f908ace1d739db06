// HyperThumb in the browser: restore the full photo from a HyperThumb JPEG on this machine.
//
//   import { restore } from "./hyperthumb.js";
//   const photo = await restore(bytes, { decoder: "full", backend: "auto", onProgress });
//   canvas.getContext("2d").putImageData(new ImageData(photo.data, photo.width, photo.height), 0, 0);
//
// The script reads only the file's headers (its quantization tables, frame and HyperThumb marker);
// the browser's own JPEG decoder gives the pixels, and an ONNX graph (`python -m hyperthumb
// export-web`) takes them with the tables, finds the file's integers again and runs the decoder,
// tile by tile, on onnxruntime-web. Nothing leaves the page.

const HERE = new URL(".", import.meta.url);
const MODELS = new URL("models/", HERE);
const RUNTIME = new URL("vendor/onnxruntime-web/", HERE);
const MARKER_ID = "HyperThumb\0";
const MAX_PIXELS = 100e6; // the Python library's limit (hyperthumb/limits.py)
// JPEG's zig-zag order: ZIGZAG[k] is the natural (row * 8 + column) index of the k-th stored value.
const ZIGZAG = [0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48, 41, 34,
  27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22, 15, 23, 30, 37, 44, 51, 58, 59,
  52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63];

/** An error whose message is one sentence a page can show as it is. */
export class ThumbnailError extends Error {
  constructor(message) { super(message); this.name = "ThumbnailError"; }
}

/** The headers of a HyperThumb JPEG: its marker, its frame and its two tables in natural order. */
export function readThumbnail(bytes) {
  bytes = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  if (bytes.length < 4 || bytes[0] !== 0xff || bytes[1] !== 0xd8) {
    throw new ThumbnailError("This file is not a JPEG image, so it cannot be a HyperThumb thumbnail.");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tables = {};
  let marker = null, frame = null, scan = -1;
  for (let pos = 2; pos + 4 <= bytes.length;) {
    if (bytes[pos] !== 0xff) break;
    const kind = bytes[pos + 1];
    if (kind === 0xda) { scan = pos; break; }
    const length = view.getUint16(pos + 2);
    const start = pos + 4, end = pos + 2 + length;
    if (length < 2 || end > bytes.length) break;
    if (kind === 0xdb) readTables(bytes, start, end, tables);
    else if (kind >= 0xc0 && kind <= 0xcf && kind !== 0xc4 && kind !== 0xc8 && kind !== 0xcc) {
      frame = readFrame(bytes, view, kind, start, pos);
    } else if (kind === 0xeb && latin1(bytes, start, start + MARKER_ID.length) === MARKER_ID) {
      marker = readMarker(bytes.subarray(start + MARKER_ID.length, end));
    }
    pos = end;
  }
  if (!marker) {
    throw new ThumbnailError("This JPEG has no HyperThumb marker: it is an ordinary JPEG, or the marker was removed.");
  }
  if (!frame || scan < 0) throw new ThumbnailError("This HyperThumb file is cut short before its image data.");
  // A browser shows a cut-short JPEG with its missing part grey; the Python decoder refuses it, and so
  // does this. In the entropy-coded data a 0xFF byte is always followed by 0x00 or a restart marker,
  // so the end-of-image marker is found only where the data really ends.
  if (!hasEndOfImage(bytes, scan)) {
    throw new ThumbnailError("This HyperThumb file is cut short: its image data stops before the end of the image.");
  }
  if (frame.kind !== 0xc0 && frame.kind !== 0xc1) {
    throw new ThumbnailError("This JPEG is not baseline, which HyperThumb always writes: the file was re-encoded.");
  }
  if (frame.components.length !== 3 || frame.components.some((c) => c.sampling !== 0x11)) {
    throw new ThumbnailError("This JPEG is not full-colour 4:4:4, which HyperThumb always writes: the file was re-encoded.");
  }
  const [luma, chroma] = [frame.components[0].table, frame.components[1].table].map((id) => tables[id]);
  if (!luma || !chroma) throw new ThumbnailError("This HyperThumb file lacks its quantization tables.");
  const rows = Math.ceil(marker.height / (marker.scale * 8)), columns = Math.ceil(marker.width / (marker.scale * 8));
  const expected = marker.version === 1 ? [columns * 8, rows * 8] : [Math.ceil(marker.width / marker.scale), Math.ceil(marker.height / marker.scale)];
  if (frame.width !== expected[0] || frame.height !== expected[1]) {
    throw new ThumbnailError(`This thumbnail is ${frame.width}x${frame.height} pixels, not the ${expected[0]}x${expected[1]} its HyperThumb marker states: the file was resized or edited.`);
  }
  return { marker, luma, chroma, blocks: [rows, columns], frameAt: frame.at };
}

function hasEndOfImage(bytes, from) {
  for (let pos = bytes.length - 2; pos >= from; pos--) {
    if (bytes[pos] === 0xff && bytes[pos + 1] === 0xd9) return true;
  }
  return false;
}

function latin1(bytes, start, end) {
  return String.fromCharCode(...bytes.subarray(start, Math.min(end, bytes.length)));
}

function readTables(bytes, start, end, tables) {
  for (let pos = start; pos < end;) {
    const precision = bytes[pos] >> 4, id = bytes[pos] & 15, size = precision ? 2 : 1;
    if (pos + 1 + 64 * size > end) throw new ThumbnailError("This HyperThumb file's quantization table is damaged.");
    const table = new Float32Array(64);
    for (let k = 0; k < 64; k++) {
      const at = pos + 1 + k * size;
      table[ZIGZAG[k]] = precision ? (bytes[at] << 8) | bytes[at + 1] : bytes[at];
    }
    if (table.some((value) => value === 0)) throw new ThumbnailError("This HyperThumb file's quantization table is damaged.");
    tables[id] = table;
    pos += 1 + 64 * size;
  }
}

function readFrame(bytes, view, kind, start, at) {
  const count = bytes[start + 5], components = [];
  for (let i = 0; i < count; i++) {
    const c = start + 6 + 3 * i;
    components.push({ id: bytes[c], sampling: bytes[c + 1], table: bytes[c + 2] });
  }
  return { kind, height: view.getUint16(start + 1), width: view.getUint16(start + 3), components, at };
}

function readMarker(payload) {
  let fields;
  try { fields = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(payload)); } catch {
    throw new ThumbnailError("This file's HyperThumb marker is damaged.");
  }
  const numbers = ["v", "scale", "width", "height"].map((key) => fields?.[key]);
  if (!numbers.every(Number.isInteger) || typeof fields.encoder !== "string") {
    throw new ThumbnailError("This file's HyperThumb marker is damaged.");
  }
  const [version, scale, width, height] = numbers;
  if (version !== 1 && version !== 2) {
    throw new ThumbnailError(`This thumbnail is in HyperThumb format ${version}, which this page cannot read (it reads 1 and 2).`);
  }
  if (scale < 1 || width < 1 || height < 1 || width * height > MAX_PIXELS) {
    throw new ThumbnailError("This file's HyperThumb marker gives an impossible photo size.");
  }
  return { version, model: fields.encoder, scale, width, height, encoderId: fields.id ?? null };
}

let manifestPromise = null;

/** The exported models (`models/models.json`). */
export function models() {
  manifestPromise ??= fetch(new URL("models.json", MODELS)).then((response) => {
    if (!response.ok) throw new ThumbnailError("This page has no HyperThumb models: run `python -m hyperthumb export-web` on its server.");
    return response.json();
  }).catch((error) => { manifestPromise = null; throw error; });
  return manifestPromise;
}

const runtimes = {};
const sessions = new Map();

async function runtime(backend) {
  runtimes[backend] ??= (async () => {
    const ort = await import(new URL(backend === "webgpu" ? "ort.webgpu.min.mjs" : "ort.wasm.min.mjs", RUNTIME).href);
    ort.env.wasm.wasmPaths = RUNTIME.href;
    // Threads need a cross-origin-isolated page (SharedArrayBuffer); elsewhere one.
    ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(navigator.hardwareConcurrency || 1, 8) : 1;
    // WebAssembly runs in a worker of its own, so that the page keeps drawing (its progress too)
    // while a tile is restored; WebGPU's work is on the GPU already.
    ort.env.wasm.proxy = backend === "wasm" && typeof Worker !== "undefined";
    return ort;
  })();
  return runtimes[backend];
}

async function chooseBackend(backend) {
  if (backend === "wasm") return "wasm";
  const adapter = "gpu" in navigator ? await navigator.gpu.requestAdapter().catch(() => null) : null;
  if (adapter) return "webgpu";
  if (backend === "webgpu") throw new ThumbnailError("This browser offers no WebGPU here; choose WebAssembly.");
  return "wasm";
}

async function session(file, backend) {
  const key = `${backend}:${file}`;
  if (!sessions.has(key)) {
    const made = (async () => {
      const ort = await runtime(backend);
      const response = await fetch(new URL(file, MODELS));
      if (!response.ok) throw new ThumbnailError(`This page cannot load the model file ${file}.`);
      const graph = new Uint8Array(await response.arrayBuffer());
      // WebGPU keeps the graph's NCHW layout: onnxruntime-web 1.31.1 converting it to NHWC gave wrong
      // pixels (24 dB from the WebAssembly result on SwiftShader; 98 dB in NCHW).
      const provider = backend === "webgpu" ? { name: "webgpu", preferredLayout: "NCHW" } : "wasm";
      return ort.InferenceSession.create(graph, { executionProviders: [provider], graphOptimizationLevel: "all" });
    })();
    made.catch(() => sessions.delete(key));
    sessions.set(key, made);
  }
  return sessions.get(key);
}

/** The file's pixels over its whole 8x8 block grid, as the browser's JPEG decoder gives them. */
async function gridPixels(bytes, header) {
  const [rows, columns] = header.blocks, width = columns * 8, height = rows * 8;
  const whole = bytes.slice();  // the frame states the padded grid, as the Python codec's pixel route does
  const at = header.frameAt + 5;
  whole[at] = height >> 8; whole[at + 1] = height & 255; whole[at + 2] = width >> 8; whole[at + 3] = width & 255;
  let bitmap;
  try {
    bitmap = await createImageBitmap(new Blob([whole], { type: "image/jpeg" }),
      { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  } catch {
    throw new ThumbnailError("This HyperThumb file is damaged: the browser cannot decode its image data.");
  }
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  context.drawImage(bitmap, 0, 0);
  bitmap.close();
  return context;
}

/**
 * Restores the full photo of a HyperThumb JPEG.
 * @param {ArrayBuffer|Uint8Array} bytes the thumbnail file
 * @param {{decoder?: "full"|"fast"|"sharp", backend?: "auto"|"webgpu"|"wasm",
 *          onProgress?: (done: number, stage: string) => void}} options
 * @returns {Promise<{width: number, height: number, data: Uint8ClampedArray, backend: string,
 *          threads: number, decoder: string, model: string, seconds: number,
 *          stages: {load: number, decode: number, restore: number}}>} RGBA pixels
 */
export async function restore(bytes, { decoder = "full", backend = "auto", onProgress = () => {} } = {}) {
  const started = performance.now();
  bytes = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const header = readThumbnail(bytes);
  const { marker } = header;
  const manifest = await models();
  const entry = manifest.models[marker.model];
  if (!entry) {
    throw new ThumbnailError(`This thumbnail was made by the model "${marker.model}", which this page does not have (it has ${Object.keys(manifest.models).join(", ")}).`);
  }
  if (marker.encoderId && entry.encoder_id !== marker.encoderId) {
    throw new ThumbnailError(`This thumbnail was made by another version of the "${marker.model}" model (encoder ${marker.encoderId}; this page has ${entry.encoder_id}).`);
  }
  if (marker.scale !== entry.scale) throw new ThumbnailError("This file's HyperThumb marker gives a scale the model does not have.");
  const graph = entry.decoders[decoder];
  if (!graph) {
    throw new ThumbnailError(`The "${marker.model}" model has no ${decoder} decoder (it has ${Object.keys(entry.decoders).join(", ")}).`);
  }
  onProgress(0, "loading the model");
  const chosen = await chooseBackend(backend);
  try {
    return await restoreWith(chosen, bytes, header, manifest, graph, decoder, started, onProgress);
  } catch (error) {
    // "auto" falls back to WebAssembly where the GPU's backend cannot run the graph.
    if (backend !== "auto" || chosen === "wasm" || error instanceof ThumbnailError) throw error;
    console.warn(`HyperThumb: WebGPU failed (${error.message || error}); restoring with WebAssembly.`);
    return restoreWith("wasm", bytes, header, manifest, graph, decoder, started, onProgress);
  }
}

async function restoreWith(chosen, bytes, header, manifest, graph, decoder, started, onProgress) {
  const { marker } = header;
  const ort = await runtime(chosen);
  const model = await session(graph.file, chosen);
  const loaded = performance.now();
  onProgress(0, "decoding the thumbnail");
  const context = await gridPixels(bytes, header);
  const decoded = performance.now();
  const { scale, width, height } = marker;
  const data = new Uint8ClampedArray(width * height * 4);
  const [rows, columns] = header.blocks;
  const tile = manifest.tile_blocks * 8, halo = manifest.halo_blocks * 8;
  const tiles = Math.ceil(rows * 8 / tile) * Math.ceil(columns * 8 / tile);
  let done = 0;
  for (let y = 0; y < rows * 8; y += tile) {
    for (let x = 0; x < columns * 8; x += tile) {
      onProgress(done / tiles, "restoring");
      const y0 = Math.max(y - halo, 0), x0 = Math.max(x - halo, 0);
      const y1 = Math.min(y + tile + halo, rows * 8), x1 = Math.min(x + tile + halo, columns * 8);
      const pixels = context.getImageData(x0, y0, x1 - x0, y1 - y0).data;
      const rgba = new ort.Tensor("uint8", new Uint8Array(pixels.buffer), [1, y1 - y0, x1 - x0, 4]);
      // The tables anew for each tile: the worker takes the buffers it is given (they detach).
      const luma = new ort.Tensor("float32", header.luma.slice(), [64]);
      const chroma = new ort.Tensor("float32", header.chroma.slice(), [64]);
      const { restored } = await model.run({ rgba, luma_table: luma, chroma_table: chroma });
      const out = restored.getData ? await restored.getData(true) : restored.data;
      // The tile's own part, cut to the photo: HR rows and columns [y, y + tile) * scale, within width x height.
      const outWidth = (x1 - x0) * scale;
      const top = y * scale, bottom = Math.min((y + tile) * scale, height);
      const left = x * scale, right = Math.min((x + tile) * scale, width);
      for (let row = top; row < bottom; row++) {
        const from = ((row - y0 * scale) * outWidth + (left - x0 * scale)) * 4;
        data.set(out.subarray(from, from + (right - left) * 4), (row * width + left) * 4);
      }
      restored.dispose?.();
      done += 1;
    }
  }
  onProgress(1, "done");
  return {
    width, height, data, backend: chosen, decoder, model: marker.model,
    threads: chosen === "wasm" ? ort.env.wasm.numThreads : 0,
    seconds: (performance.now() - started) / 1000,
    // where the time went: the model's loading (once per page), the browser's JPEG decode, the graph's tiles
    stages: { load: (loaded - started) / 1000, decode: (decoded - loaded) / 1000, restore: (performance.now() - decoded) / 1000 },
  };
}

// The viewer page: open a HyperThumb JPEG (drop, file picker, web address or ?src=), show the
// thumbnail at once, restore the photo on this device with hyperthumb.js, then compare the two.
//
// Scripts and tests drive it through `window.hyperthumb.open(bytesOrUrl, name?)`, which runs the
// whole page flow and resolves to restore()'s result (it rejects with the error the page shows).
// The body's data-state says where the page is: idle, working, restored or error.

import { restore, readThumbnail, ThumbnailError, models } from "./hyperthumb.js";

const $ = (id) => document.getElementById(id);
const ui = {
  drop: $("drop"), file: $("file"), url: $("url"), urlForm: $("url-form"), open: $("open"),
  decoder: $("decoder"), backend: $("backend"), status: $("status"), result: $("result"), info: $("info"),
  frame: $("frame"), compare: $("compare"), before: $("before"), after: $("after"), divider: $("divider"),
  working: $("working"), workingText: $("working-text"), progress: $("progress"), split: $("split"),
  actual: $("actual"), download: $("download"), timing: $("timing"),
};

const DECODERS = { full: "Full — faithful", fast: "Fast", sharp: "Sharp" };
const BACKENDS = { webgpu: "WebGPU (graphics card)", wasm: "WebAssembly" };

/** An error whose message is one sentence for the page, like ThumbnailError but about the page's own steps. */
class Notice extends Error {
  constructor(message, name = "Notice") { super(message); this.name = name; }
}

let generation = 0;             // the latest open(); an older one finishes without touching the page
let queue = Promise.resolve();  // restores run one at a time (one model session, one machine)
let current = null;             // {bytes, name} of the thumbnail on show, restored again when a choice changes
let objectUrls = [];            // the thumbnail's and the PNG's, revoked when the next file opens
let photo = null;               // {width, height} of the photo on show

// -- The page's state ------------------------------------------------------------------------------

function setState(state) { document.body.dataset.state = state; }

function say(text, { error = false } = {}) {
  ui.status.textContent = text;
  if (error) ui.status.className = "error";
  else ui.status.removeAttribute("class");
}

/** One sentence for any error: a ThumbnailError's or the page's own as it is, anything else in plain words. */
function sentence(error) {
  if (error instanceof ThumbnailError || error instanceof Notice) return error.message;
  if (ui.backend.value === "webgpu" || /webgpu|gpu/i.test(String(error?.message))) {
    return "The graphics card could not restore this photo in this browser; choose WebAssembly under “Run on” and try again.";
  }
  if (error?.name === "RangeError" || /memory|allocat/i.test(String(error?.message))) {
    return "This browser ran out of memory while restoring the photo; close other tabs, or try a smaller photo.";
  }
  return "Something went wrong while restoring this photo in this browser; try again, or try another browser.";
}

function forget() {
  objectUrls.forEach((url) => URL.revokeObjectURL(url));
  objectUrls = [];
}

function objectUrl(blob) {
  const url = URL.createObjectURL(blob);
  objectUrls.push(url);
  return url;
}

// -- Reading what the user gave --------------------------------------------------------------------

function nameFromUrl(url) {
  const last = url.pathname.split("/").filter(Boolean).pop();
  try { return last ? decodeURIComponent(last) : url.hostname || "photo.jpg"; } catch { return last; }
}

/** The bytes and a file name of a URL (string or URL), a Blob/File, an ArrayBuffer or a typed array. */
async function read(source, name) {
  if (typeof source === "string" || source instanceof URL) {
    let url;
    try { url = new URL(source, location.href); } catch {
      throw new Notice("That web address is not valid; it should look like https://example.com/photo.jpg.");
    }
    if (!["http:", "https:", "blob:", "data:"].includes(url.protocol)) {
      throw new Notice("Only web addresses that start with https:// or http:// can be opened here.");
    }
    let response;
    try { response = await fetch(url); } catch {
      throw new Notice("The file at that address could not be downloaded: the site may be offline, or it does not let other pages read its files.");
    }
    if (!response.ok) {
      throw new Notice(response.status === 404
        ? "There is no file at that address (the site answered “not found”)."
        : `The site refused to give the file at that address (error ${response.status}).`);
    }
    // The address as given (a relative one stays relative in the page's own link).
    return { bytes: new Uint8Array(await response.arrayBuffer()), name: name || nameFromUrl(url), url: String(source) };
  }
  if (source instanceof Blob) {
    return { bytes: new Uint8Array(await source.arrayBuffer()), name: name || source.name || "photo.jpg" };
  }
  if (source instanceof ArrayBuffer) return { bytes: new Uint8Array(source), name: name || "photo.jpg" };
  if (ArrayBuffer.isView(source)) {
    return { bytes: new Uint8Array(source.buffer, source.byteOffset, source.byteLength), name: name || "photo.jpg" };
  }
  throw new Notice("Give the page a file, its bytes or its web address.");
}

function kilobytes(bytes) {
  const kb = bytes / 1000;
  return `${kb < 100 ? kb.toFixed(1) : Math.round(kb)} KB`;
}

function megabytes(bytes) {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : kilobytes(bytes);
}

// -- Showing the thumbnail, then the photo -----------------------------------------------------------

/** Sizes the comparison to the photo: as wide as fits (never past its own size, nor 78 % of the
 *  window's height), or at one photo pixel per screen pixel when "Actual size" is pressed. */
function layout() {
  if (!photo) return;
  const { width, height } = photo;
  const actual = ui.actual.getAttribute("aria-pressed") === "true";
  ui.compare.style.aspectRatio = `${width} / ${height}`;
  ui.compare.style.width = actual ? `${width / (window.devicePixelRatio || 1)}px`
    : `min(100%, ${width}px, calc(78vh * ${width / height}))`;
  ui.frame.classList.toggle("actual", actual);
}

function showThumbnail(bytes, header, name) {
  const { marker } = header;
  photo = { width: marker.width, height: marker.height };
  const [rows, columns] = header.blocks;
  const thumb = marker.version === 1 ? [columns * 8, rows * 8]
    : [Math.ceil(marker.width / marker.scale), Math.ceil(marker.height / marker.scale)];
  // The thumbnail covers (its size x scale) photo pixels, a little past the photo's edge when the
  // photo's size is not a multiple of the scale (or of 8 blocks, format 1): the rest is cut off.
  ui.before.style.width = `${(thumb[0] * marker.scale / marker.width) * 100}%`;
  ui.before.style.height = `${(thumb[1] * marker.scale / marker.height) * 100}%`;
  ui.before.src = objectUrl(new Blob([bytes], { type: "image/jpeg" }));
  ui.info.textContent = `${name} · a ${kilobytes(bytes.length)} thumbnail, ${thumb[0]} × ${thumb[1]} pixels · `
    + `the photo: ${marker.width} × ${marker.height} pixels · model: ${marker.model}`;
  ui.after.width = 0;  // nothing of the last photo
  ui.download.hidden = true;
  ui.download.removeAttribute("href");
  ui.timing.textContent = "";
  ui.timing.removeAttribute("title");
  ui.split.disabled = true;
  ui.result.classList.remove("is-restored");
  ui.result.classList.add("is-working");
  ui.result.hidden = false;
  layout();
  showProgress(null, "Loading…");
  bringIntoView();
}

/** Scrolls the status line to the top when the photo below it does not fit in the window. */
function bringIntoView() {
  if (ui.result.getBoundingClientRect().bottom <= window.innerHeight) return;
  if (ui.status.getBoundingClientRect().top < 8) return;
  ui.status.scrollIntoView({ block: "start" });
}

/** The bar and its words; `done` null: not known yet (the bar moves to and fro). */
function showProgress(done, text) {
  if (done === null) ui.progress.removeAttribute("value");
  else ui.progress.value = Math.max(0, Math.min(1, done));
  ui.workingText.textContent = text;
}

/** Follows restore()'s onProgress. A tile reports only when it starts, and a small photo is one
 *  tile, so within a tile the bar creeps on towards its end, at the pace the last tile took. */
function progressFollower(run, tell) {
  let tiles = 1, base = 0, started = 0, pace = 1500, timer = 0, lastStage = "";
  const tick = () => {
    if (run !== generation) return stop();
    const within = 1 - Math.exp(-(performance.now() - started) / pace);
    showProgress((base + 0.95 * within) / tiles, ui.workingText.textContent);
  };
  const stop = () => { clearInterval(timer); timer = 0; };
  const follow = (done, stage) => {
    if (run !== generation) return;
    if (stage === "restoring") {
      const now = performance.now();
      if (lastStage === "restoring" && done > base) pace = Math.max(200, (now - started) / 2.5 / ((done - base) * tiles));
      base = done;
      started = now;
      const part = tiles > 1 ? ` (part ${Math.round(done * tiles) + 1} of ${tiles})` : "";
      tell("Restoring the photo on this device…");
      showProgress(done, `Restoring the photo${part}…`);
      timer ||= setInterval(tick, 100);
    } else if (stage === "loading the model") {
      tell("Loading the decoder (the first time takes a moment)…");
      showProgress(null, "Loading the decoder…");
    } else if (stage === "decoding the thumbnail") {  // a moment, and the restore follows at once
      tell("Restoring the photo on this device…");
      showProgress(null, "Restoring the photo…");
    } else if (stage === "done") {
      stop();
      showProgress(1, "Finishing…");
    }
    lastStage = stage;
  };
  follow.setTiles = (count) => { tiles = Math.max(1, count); };
  follow.stop = stop;
  return follow;
}

/** The decoders the thumbnail's model has; the others are disabled. Returns the one to use. */
async function offerDecoders(model, blocks) {
  const options = [...ui.decoder.options];
  options.forEach((option) => { option.disabled = false; });
  let manifest;
  try { manifest = await models(); } catch { return { decoder: ui.decoder.value, tiles: 1 }; }  // restore() says why
  const entry = manifest.models?.[model];
  const tileBlocks = manifest.tile_blocks || 64;
  const tiles = Math.ceil(blocks[0] / tileBlocks) * Math.ceil(blocks[1] / tileBlocks);
  if (!entry) return { decoder: ui.decoder.value, tiles };
  options.forEach((option) => { option.disabled = !entry.decoders?.[option.value]; });
  let decoder = ui.decoder.value, note = "";
  if (!entry.decoders?.[decoder]) {
    const fallback = options.find((option) => !option.disabled);
    if (fallback) {
      note = `The “${model}” model has no ${DECODERS[decoder]} decoder, so ${fallback.textContent} is used.`;
      decoder = ui.decoder.value = fallback.value;
    }
  }
  return { decoder, tiles, note };
}

function exclusive(task) {
  const result = queue.then(task, task);
  queue = result.catch(() => {});
  return result;
}

function superseded() {
  return new Notice("Another photo was opened before this one was restored.", "AbortError");
}

/**
 * The whole page flow for one thumbnail: read it, show it, restore the photo, compare them.
 * @param {string|URL|Blob|ArrayBuffer|ArrayBufferView} source the file, its bytes or its address
 * @param {string} [name] its file name (for the download's name); taken from the file or address if left out
 * @returns {Promise<object>} restore()'s result; rejects with the error the page shows
 */
async function open(source, name) {
  const run = ++generation;
  setState("working");
  say("Opening…");
  let note = "";
  const tell = (text) => say(note ? `${note} ${text}` : text);
  const follow = progressFollower(run, tell);
  let shown = false;
  try {
    const file = await read(source, name);
    if (run !== generation) throw superseded();
    const header = readThumbnail(file.bytes);
    // Restored again with another choice: still the same address.
    const url = file.url ?? (file.bytes.buffer === current?.bytes.buffer ? current.url : undefined);
    current = { bytes: file.bytes, name: file.name, url };
    remember(url);
    forget();
    showThumbnail(file.bytes, header, file.name);
    shown = true;
    const offered = await offerDecoders(header.marker.model, header.blocks);
    const decoder = offered.decoder;
    note = offered.note || "";
    follow.setTiles(offered.tiles);
    if (run !== generation) throw superseded();
    tell("Waiting for the previous photo to finish…");
    const result = await exclusive(() => {
      if (run !== generation) throw superseded();
      tell("Restoring the photo on this device…");
      return restore(file.bytes, { decoder, backend: ui.backend.value, onProgress: follow });
    });
    follow.stop();
    if (run !== generation) return result;  // restored, but another photo is on show now
    await showRestored(result, file.name, note, run);
    if (run === generation) setState("restored");
    return result;
  } catch (error) {
    follow.stop();
    if (run === generation) {
      if (!shown) current = null;  // a choice changed later has nothing to restore again
      if (!(error instanceof ThumbnailError || error instanceof Notice)) console.error(error);
      ui.result.hidden = true;
      ui.result.classList.remove("is-working", "is-restored");
      say(sentence(error), { error: true });
      setState("error");
    }
    throw error;
  }
}

async function showRestored(result, name, note, run) {
  const { width, height, data } = result;
  ui.after.width = width;
  ui.after.height = height;
  ui.after.getContext("2d").putImageData(new ImageData(data, width, height), 0, 0);
  ui.result.classList.remove("is-working");
  ui.result.classList.add("is-restored", "reveal");
  setSplit(50);
  setTimeout(() => ui.result.classList.remove("reveal"), 800);
  ui.split.disabled = false;
  const where = result.backend === "webgpu" ? BACKENDS.webgpu
    : `${BACKENDS.wasm} on ${result.threads} thread${result.threads === 1 ? "" : "s"}`;
  ui.timing.textContent = `Restored in ${result.seconds.toFixed(1)} s with ${where} · decoder: `
    + `${DECODERS[result.decoder] || result.decoder} · model: ${result.model} · ${width} × ${height} pixels`;
  if (result.backend === "wasm" && result.threads === 1 && !self.crossOriginIsolated) {
    ui.timing.title = "One thread only: this site does not send the Cross-Origin-Opener-Policy and "
      + "Cross-Origin-Embedder-Policy headers that let the browser use several.";
  }
  say(`${note ? `${note} ` : ""}Restored. Drag across the photo, or move the slider, to compare it with the thumbnail.`);
  showProgress(1, "Done");
  const png = await new Promise((resolve) => ui.after.toBlob(resolve, "image/png"));
  if (png && run === generation) {
    ui.download.href = objectUrl(png);
    ui.download.download = `${name.replace(/\.(jpe?g|jfif)$/i, "")}.restored.png`;
    ui.download.textContent = `Download PNG (${megabytes(png.size)})`;
    ui.download.hidden = false;
  }
}

/** The address in the page's own link (?src=), so that it can be shared; a local file clears it. */
function remember(url) {
  const here = new URL(location.href);
  if (url && !url.startsWith("blob:") && !url.startsWith("data:")) here.searchParams.set("src", url);
  else here.searchParams.delete("src");
  if (here.href !== location.href) history.replaceState(null, "", here);
}

// -- The before/after split --------------------------------------------------------------------------

function setSplit(percent) {
  const value = Math.max(0, Math.min(100, percent));
  ui.split.value = String(value);
  ui.after.style.clipPath = `inset(0 0 0 ${value}%)`;
  ui.divider.style.left = `${value}%`;
}

ui.split.addEventListener("input", () => setSplit(Number(ui.split.value)));

let dragging = null;
ui.compare.addEventListener("pointerdown", (event) => {
  if (!ui.result.classList.contains("is-restored") || event.button !== 0) return;
  // At actual size a finger pans the photo; the slider below still splits it.
  if (event.pointerType === "touch" && ui.frame.classList.contains("actual")) return;
  dragging = event.pointerId;
  ui.compare.setPointerCapture(event.pointerId);
  ui.compare.classList.add("dragging");
  splitAt(event);
});
ui.compare.addEventListener("dragstart", (event) => event.preventDefault());  // a drag splits, never carries the image
ui.compare.addEventListener("pointermove", (event) => { if (event.pointerId === dragging) splitAt(event); });
const endDrag = (event) => {
  if (event.pointerId !== dragging) return;
  dragging = null;
  ui.compare.classList.remove("dragging");
};
ui.compare.addEventListener("pointerup", endDrag);
ui.compare.addEventListener("pointercancel", endDrag);

function splitAt(event) {
  const box = ui.compare.getBoundingClientRect();
  setSplit(((event.clientX - box.left) / box.width) * 100);
}

ui.actual.addEventListener("click", () => {
  const actual = ui.actual.getAttribute("aria-pressed") !== "true";
  ui.actual.setAttribute("aria-pressed", String(actual));
  ui.actual.textContent = actual ? "Fit to window" : "Actual size";
  layout();
});

// -- Ways in ----------------------------------------------------------------------------------------

const quietly = (promise) => promise.catch(() => {});  // the page has shown the error

ui.file.addEventListener("change", () => {
  const file = ui.file.files[0];
  ui.file.value = "";  // the same file may be chosen again
  if (file) quietly(open(file, file.name));
});

ui.urlForm.addEventListener("submit", (event) => {
  event.preventDefault();
  const address = ui.url.value.trim();
  if (!address) {
    say("Type or paste the web address of a HyperThumb JPEG first.");
    ui.url.focus();
    return;
  }
  quietly(open(address));
});

let dragDepth = 0;
const carriesSomething = (event) => [...(event.dataTransfer?.types || [])]
  .some((type) => type === "Files" || type === "text/uri-list" || type === "text/plain");
document.addEventListener("dragenter", (event) => {
  if (!carriesSomething(event)) return;
  event.preventDefault();
  dragDepth += 1;
  document.body.classList.add("dragging");
});
document.addEventListener("dragover", (event) => {
  if (!carriesSomething(event)) return;
  event.preventDefault();
  event.dataTransfer.dropEffect = "copy";
});
document.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (!dragDepth) document.body.classList.remove("dragging");
});
document.addEventListener("drop", (event) => {
  event.preventDefault();  // never let the browser navigate to the dropped file
  dragDepth = 0;
  document.body.classList.remove("dragging");
  const file = event.dataTransfer.files?.[0];
  if (file) return void quietly(open(file, file.name));
  const link = (event.dataTransfer.getData("text/uri-list") || event.dataTransfer.getData("text/plain"))
    .split(/\r?\n/).find((line) => line && !line.startsWith("#"));
  if (link) {
    ui.url.value = link.trim();
    quietly(open(link.trim()));
  }
});

document.addEventListener("paste", (event) => {
  if (event.target.closest?.("input, textarea, select, [contenteditable]")) return;  // ordinary pasting
  const file = event.clipboardData?.files?.[0];
  const text = event.clipboardData?.getData("text/plain")?.trim();
  if (file) {
    event.preventDefault();
    quietly(open(file, file.name));
  } else if (text && /^(https?:)?\/\//i.test(text)) {
    event.preventDefault();
    ui.url.value = text;
    quietly(open(text));
  }
});

// A changed choice restores the photo on show again with it.
for (const select of [ui.decoder, ui.backend]) {
  select.addEventListener("change", () => {
    if (current) quietly(open(current.bytes, current.name));
  });
}

window.addEventListener("resize", layout);

window.hyperthumb = { restore, readThumbnail, ThumbnailError, open, models };

const src = new URLSearchParams(location.search).get("src");
if (src) {
  ui.url.value = src;
  quietly(open(src));
}

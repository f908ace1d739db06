// HyperThumb for a photo site: thumbnails that restore to the full photo, in the visitor's browser.
//
//   <script type="module" src="/hyperthumb/upgrade.js"></script>
//   <img src="photo.thumb.jpg" data-hyperthumb width="320" height="180" alt="The bridge at dusk">
//
// Every <img data-hyperthumb> stays an ordinary image: the thumbnail, which any browser shows.
// Clicking it (or Enter / Space when it has focus) loads hyperthumb.js from beside this file,
// restores the photo on this device and puts it in place of the thumbnail: its src becomes an
// object URL of the restored PNG, so its natural size becomes the photo's, while its width and
// height attributes (or the site's CSS) keep the size it is shown at.
//
// Attributes read:  data-hyperthumb  (empty, or the address of the HyperThumb file when src is
//                                     another copy of it, e.g. one a CDN re-encoded)
//                   data-decoder     full (default), fast or sharp
//                   data-backend     auto (default), webgpu or wasm
// Set while working: class "ht-restoring", aria-busy="true" and a small overlay with a progress bar.
// Set when done:     data-restored="true"; the event "hyperthumb:restored" (bubbles; detail:
//                    {result, blob, url}).
// Set on an error:   data-error and title: one sentence; the event "hyperthumb:error" (detail:
//                    {error, message}). Clicking again tries again.
//
// The script upgrades the page's images when it loads; call upgrade(element) for images added later.

const CORE = new URL("hyperthumb.js", import.meta.url).href;
const STYLE_ID = "hyperthumb-upgrade-style";
const STYLE = `
img.ht-thumb:not([data-restored]) { cursor: zoom-in; }
img.ht-thumb.ht-restoring { cursor: progress; }
img.ht-thumb:focus-visible { outline: 3px solid #1f5fd1; outline-offset: 2px; }
img.ht-thumb[data-error] { outline: 2px solid #c0182c; outline-offset: 2px; }
.ht-overlay { position: fixed; z-index: 1; box-sizing: border-box; display: flex; flex-direction: column;
  justify-content: flex-end; gap: 4px; padding: 6px 8px; pointer-events: none; overflow: hidden;
  background: linear-gradient(rgba(0,0,0,0.15), rgba(0,0,0,0.6)); color: #fff;
  font: 600 12px/1.3 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; text-shadow: 0 1px 2px #000; }
.ht-overlay progress { width: 100%; height: 6px; accent-color: #6d9cf2; }
.ht-overlay[hidden] { display: none; }
`;

const seen = new WeakSet();
const titles = new WeakMap();    // per image, its own title, put back when a retry starts
const addedBy = new WeakMap();   // per image, the attributes this script added (taken off once restored)
let core = null;                 // hyperthumb.js, imported on the first restore
let queue = Promise.resolve();   // one restore at a time: one model session, one machine

function loadCore() {
  core ??= import(CORE).catch((error) => { core = null; throw error; });
  return core;
}

function exclusive(task) {
  const result = queue.then(task, task);
  queue = result.catch(() => {});
  return result;
}

/**
 * Makes every <img data-hyperthumb> in `root` (or `root` itself) restorable on a click or key.
 * Images already upgraded are left as they are. Returns the images found.
 * @param {Document|Element} [root]
 * @returns {HTMLImageElement[]}
 */
export function upgrade(root = document) {
  const document_ = root.ownerDocument || root;
  if (!document_.getElementById(STYLE_ID)) {
    const style = document_.createElement("style");
    style.id = STYLE_ID;
    style.textContent = STYLE;
    (document_.head || document_.documentElement).append(style);
  }
  const images = [];
  if (root.matches?.("img[data-hyperthumb]")) images.push(root);
  images.push(...(root.querySelectorAll?.("img[data-hyperthumb]") ?? []));
  for (const img of images) {
    if (seen.has(img)) continue;
    seen.add(img);
    prepare(img);
  }
  return images;
}

function prepare(img) {
  img.classList.add("ht-thumb");
  const added = [];
  if (!img.hasAttribute("tabindex")) { img.tabIndex = 0; added.push("tabindex"); }
  if (!img.hasAttribute("role")) { img.setAttribute("role", "button"); added.push("role"); }
  if (!img.hasAttribute("aria-label")) {
    const alt = img.getAttribute("alt");
    img.setAttribute("aria-label", `${alt ? `${alt}: ` : ""}thumbnail; press to restore the full photo`);
    added.push("aria-label");
  }
  if (!img.hasAttribute("title")) { img.title = "Click to restore the full photo"; added.push("title"); }
  addedBy.set(img, added);
  img.addEventListener("click", () => { restoreImage(img); });
  img.addEventListener("keydown", (event) => {
    if (event.key !== "Enter" && event.key !== " ") return;
    event.preventDefault();
    restoreImage(img);
  });
}

/** One sentence for the page (a ThumbnailError's own, anything else in plain words). */
function sentence(error) {
  if (error?.name === "ThumbnailError" || error?.name === "HyperThumbNotice") return error.message;
  if (/memory|allocat/i.test(String(error?.message))) return "This browser ran out of memory while restoring the photo.";
  return "This photo could not be restored in this browser.";
}

function notice(message) {
  const error = new Error(message);
  error.name = "HyperThumbNotice";
  return error;
}

async function thumbnailBytes(img) {
  const address = img.dataset.hyperthumb || img.currentSrc || img.src;
  if (!address) throw notice("This image has no address to restore it from.");
  let response;
  try { response = await fetch(address); } catch {
    throw notice("The thumbnail could not be downloaded again to restore it: its site may not allow it.");
  }
  if (!response.ok) throw notice(`The thumbnail could not be downloaded again to restore it (error ${response.status}).`);
  return new Uint8Array(await response.arrayBuffer());
}

async function png({ width, height, data }) {
  const pixels = new ImageData(data, width, height);
  if (typeof OffscreenCanvas !== "undefined") {
    const canvas = new OffscreenCanvas(width, height);
    canvas.getContext("2d").putImageData(pixels, 0, 0);
    return canvas.convertToBlob({ type: "image/png" });
  }
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.getContext("2d").putImageData(pixels, 0, 0);
  return new Promise((resolve, reject) => canvas.toBlob((blob) => (blob ? resolve(blob) : reject(notice(
    "This browser could not make an image of the restored photo."))), "image/png"));
}

/** A small box over the image while it is restored, following it as the page scrolls. */
function overlay(img) {
  const box = img.ownerDocument.createElement("span");
  box.className = "ht-overlay";
  box.setAttribute("aria-hidden", "true");
  const text = img.ownerDocument.createElement("span");
  const bar = img.ownerDocument.createElement("progress");
  bar.max = 1;
  box.append(text, bar);
  img.ownerDocument.body.append(box);
  let frame = 0;
  const place = () => {
    const rect = img.getBoundingClientRect();
    box.hidden = !rect.width || !rect.height;
    Object.assign(box.style, { left: `${rect.left}px`, top: `${rect.top}px`, width: `${rect.width}px`, height: `${rect.height}px` });
    frame = requestAnimationFrame(place);
  };
  place();
  return {
    show(done, words) {
      text.textContent = words;
      if (done === null) bar.removeAttribute("value");
      else bar.value = done;
    },
    remove() { cancelAnimationFrame(frame); box.remove(); },
  };
}

const STAGES = { "loading the model": "Loading…", "decoding the thumbnail": "Restoring…", restoring: "Restoring…", done: "Finishing…" };

/**
 * Restores one image in place (what a click does). Resolves when it is done or has failed (the
 * image then carries data-error); an image restored or being restored is left alone.
 * @param {HTMLImageElement} img
 * @returns {Promise<boolean>} whether the photo was restored
 */
export async function restoreImage(img) {
  if (img.dataset.restored === "true" || img.classList.contains("ht-restoring")) return false;
  if (img.dataset.error !== undefined && titles.has(img)) {
    const own = titles.get(img);
    if (own === null) img.removeAttribute("title");
    else img.setAttribute("title", own);
  }
  img.removeAttribute("data-error");
  img.classList.add("ht-restoring");
  img.setAttribute("aria-busy", "true");
  const shown = overlay(img);
  shown.show(null, "Waiting…");
  try {
    const [{ restore }, bytes] = await Promise.all([loadCore(), thumbnailBytes(img)]);
    const options = { decoder: img.dataset.decoder || "full", backend: img.dataset.backend || "auto" };
    const result = await exclusive(() => restore(bytes, {
      ...options,
      onProgress: (done, stage) => shown.show(stage === "restoring" || stage === "done" ? done : null, STAGES[stage] || "Restoring…"),
    }));
    shown.show(1, "Finishing…");
    const blob = await png(result);
    const url = URL.createObjectURL(blob);
    await swap(img, url);
    img.dataset.restored = "true";
    img.dispatchEvent(new CustomEvent("hyperthumb:restored", { bubbles: true, detail: { result, blob, url } }));
    return true;
  } catch (error) {
    const message = sentence(error);
    if (!/^(ThumbnailError|HyperThumbNotice)$/.test(error?.name)) console.error("HyperThumb:", error);
    if (!titles.has(img)) titles.set(img, img.getAttribute("title"));
    img.dataset.error = message;
    img.title = message;
    img.dispatchEvent(new CustomEvent("hyperthumb:error", { bubbles: true, detail: { error, message } }));
    return false;
  } finally {
    shown.remove();
    img.classList.remove("ht-restoring");
    img.removeAttribute("aria-busy");
  }
}

/** The restored photo in place of the thumbnail, shown at the size the thumbnail was. */
async function swap(img, url) {
  if (!img.hasAttribute("width") && !img.hasAttribute("height") && img.naturalWidth) {
    img.width = img.naturalWidth;  // no jump to the photo's size where neither attributes nor CSS size it
    img.height = img.naturalHeight;
  }
  img.removeAttribute("srcset");  // else the browser keeps choosing a thumbnail
  img.removeAttribute("sizes");
  if (img.parentElement?.tagName === "PICTURE") img.parentElement.querySelectorAll("source").forEach((s) => s.remove());
  img.src = url;
  await img.decode().catch(() => {});
  for (const name of addedBy.get(img) || []) img.removeAttribute(name);
  addedBy.delete(img);
  if (img.getAttribute("title") === "Click to restore the full photo") img.removeAttribute("title");
}

if (typeof document !== "undefined") {
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", () => upgrade(), { once: true });
  else upgrade();
}

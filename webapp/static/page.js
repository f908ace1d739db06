() => {
  // The before/after viewers (webapp/compare.py): one transform for both images, so that pan and
  // zoom stay in step; the split line clips the left image in screen space.
  const views = new WeakMap();
  const stageOf = (viewer) => viewer.querySelector(".ht-stage");
  const photoSize = (viewer) => [Number(viewer.dataset.width), Number(viewer.dataset.height)];

  function draw(viewer) {
    const view = views.get(viewer);
    for (const img of viewer.querySelectorAll(".ht-layer img")) {
      img.style.transform = `translate(${view.x}px, ${view.y}px) scale(${view.scale})`;
      img.style.imageRendering = view.scale >= 2 ? "pixelated" : "auto";
    }
    viewer.querySelector(".ht-before").style.clipPath = `inset(0 ${100 - view.split}% 0 0)`;
    viewer.querySelector(".ht-handle").style.left = `${view.split}%`;
    viewer.querySelector(".ht-split").value = view.split;
    viewer.querySelector(".ht-zoom").textContent = `${Math.round(view.scale * 100)} %`;
  }

  function keepInFrame(viewer) {
    const view = views.get(viewer), [width, height] = photoSize(viewer);
    const frame = stageOf(viewer).getBoundingClientRect();
    const fitAxis = (offset, shown, room) => shown <= room ? (room - shown) / 2 : Math.min(0, Math.max(room - shown, offset));
    view.x = fitAxis(view.x, width * view.scale, frame.width);
    view.y = fitAxis(view.y, height * view.scale, frame.height);
  }

  function fit(viewer) {
    const view = views.get(viewer), [width, height] = photoSize(viewer);
    const frame = stageOf(viewer).getBoundingClientRect();
    if (!frame.width || !frame.height) return;
    view.scale = Math.min(frame.width / width, frame.height / height, 1);
    view.fitted = true;
    keepInFrame(viewer);
    draw(viewer);
  }

  function zoomAround(viewer, scale, cx, cy) {
    const view = views.get(viewer), frame = stageOf(viewer).getBoundingClientRect();
    if (cx === undefined) [cx, cy] = [frame.width / 2, frame.height / 2];
    scale = Math.min(16, Math.max(0.02, scale));
    const [px, py] = [(cx - view.x) / view.scale, (cy - view.y) / view.scale];  // the photo's pixel under the point
    Object.assign(view, {scale, x: cx - px * scale, y: cy - py * scale, fitted: false});
    keepInFrame(viewer);
    draw(viewer);
  }

  function setUp(viewer) {
    // Gradio may update a viewer in place with new images, which resets their transforms: a new key
    // (the images' paths) sets the view up afresh.
    if (views.has(viewer) && views.get(viewer).key === viewer.dataset.key) return;
    const first = !views.has(viewer);
    views.set(viewer, {scale: 1, x: 0, y: 0, split: 50, fitted: true, key: viewer.dataset.key});
    fit(viewer);
    draw(viewer);  // the split and its labels even before the frame has a size (a hidden column)
    const result = viewer.closest("#result");
    if (result && result.getBoundingClientRect().top > window.innerHeight * 0.6) {
      result.scrollIntoView({behavior: "smooth", block: "start"});  // a result below the fold comes into view
    }
    if (first) {
      new ResizeObserver(() => views.get(viewer).fitted ? fit(viewer) : (keepInFrame(viewer), draw(viewer)))
        .observe(viewer);  // the viewer, which stays when Gradio replaces what is inside it
    }
  }

  new MutationObserver(() => document.querySelectorAll(".ht-compare").forEach(setUp))
    .observe(document.body, {childList: true, subtree: true, attributes: true, attributeFilter: ["data-key"]});

  document.addEventListener("click", (event) => {
    const button = event.target.closest(".ht-compare [data-view]");
    if (!button) return;
    const viewer = button.closest(".ht-compare");
    button.dataset.view === "fit" ? fit(viewer) : zoomAround(viewer, 1);
  });
  document.addEventListener("input", (event) => {
    if (!event.target.matches(".ht-compare .ht-split")) return;
    const viewer = event.target.closest(".ht-compare");
    views.get(viewer).split = Number(event.target.value);
    draw(viewer);
  });
  document.addEventListener("wheel", (event) => {
    const stage = event.target.closest(".ht-compare .ht-stage");
    if (!stage) return;
    event.preventDefault();
    const viewer = stage.closest(".ht-compare"), frame = stage.getBoundingClientRect();
    zoomAround(viewer, views.get(viewer).scale * Math.exp(-event.deltaY / 500),
               event.clientX - frame.left, event.clientY - frame.top);
  }, {passive: false});

  let drag = null;  // {viewer, kind: "split" | "pan", x, y}
  const touches = new Map();  // pointer id -> [x, y], for a two-finger pinch
  let pinch = null;  // {viewer, distance}
  const spread = () => { const [a, b] = [...touches.values()]; return Math.hypot(a[0] - b[0], a[1] - b[1]); };
  document.addEventListener("pointerdown", (event) => {
    const stage = event.target.closest(".ht-compare .ht-stage");
    if (!stage || event.button !== 0) return;
    const viewer = stage.closest(".ht-compare"), frame = stage.getBoundingClientRect();
    touches.set(event.pointerId, [event.clientX, event.clientY]);
    stage.setPointerCapture(event.pointerId);
    if (touches.size === 2) {
      drag = null;
      pinch = {viewer, distance: spread()};
      return;
    }
    const nearLine = Math.abs(event.clientX - frame.left - frame.width * views.get(viewer).split / 100) < 16;
    drag = {viewer, kind: nearLine ? "split" : "pan", x: event.clientX, y: event.clientY};
    stage.classList.add("ht-dragging");
  });
  document.addEventListener("pointermove", (event) => {
    if (touches.has(event.pointerId)) touches.set(event.pointerId, [event.clientX, event.clientY]);
    if (pinch && touches.size === 2) {
      const distance = spread(), frame = stageOf(pinch.viewer).getBoundingClientRect();
      const [a, b] = [...touches.values()];
      zoomAround(pinch.viewer, views.get(pinch.viewer).scale * distance / pinch.distance,
                 (a[0] + b[0]) / 2 - frame.left, (a[1] + b[1]) / 2 - frame.top);
      pinch.distance = distance;
      return;
    }
    if (!drag) return;
    const view = views.get(drag.viewer), frame = stageOf(drag.viewer).getBoundingClientRect();
    if (drag.kind === "split") {
      view.split = Math.min(100, Math.max(0, (event.clientX - frame.left) / frame.width * 100));
    } else {
      Object.assign(view, {x: view.x + event.clientX - drag.x, y: view.y + event.clientY - drag.y, fitted: false});
      keepInFrame(drag.viewer);
    }
    [drag.x, drag.y] = [event.clientX, event.clientY];
    draw(drag.viewer);
  });
  const release = (event) => {
    touches.delete(event.pointerId);
    if (touches.size < 2) pinch = null;
    if (drag) stageOf(drag.viewer).classList.remove("ht-dragging");
    drag = null;
  };
  document.addEventListener("pointerup", release);
  document.addEventListener("pointercancel", release);

  // The blind study's keys act only while its crops are on screen, never with a modifier held or
  // in a text field; Enter on a vote button left focused casts nothing (a vote is a key or a click).
  const keys = {a: "study-left-better", b: "study-right-better", "=": "study-same", " ": "study-next",
                f: "study-flicker", u: "study-undo"};
  document.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && event.target.closest("#study-votes, #study-actions")) {
      event.preventDefault();
      return;
    }
    const typing = ["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName);
    const shortcut = event.ctrlKey || event.metaKey || event.altKey;
    const crops = document.querySelector("#study-crops");
    const shown = crops && crops.getClientRects().length > 0;
    if (typing || shortcut || !shown || !(event.key in keys)) return;
    event.preventDefault();
    document.querySelector(`#${keys[event.key]}`)?.click();
  }, true);
  document.addEventListener("click", (event) => {
    const button = event.target.closest("#study-votes button, #study-actions button");
    if (button) button.blur();  // focus leaves the button that was pressed
  });

  // The Restore tab's in-browser restore (webapp/decode_tab.py): the chosen file is read here and
  // restored by the viewer's module (web/hyperthumb.js, served at viewer/); it is never uploaded.
  let restoring = false;
  async function restoreHere() {
    const block = document.querySelector("#browser-restore"), input = block?.querySelector("#browser-restore-file");
    const file = input?.files[0];
    if (!file || restoring) return;
    restoring = true;
    const status = block.querySelector("#browser-restore-status"), progress = block.querySelector("#browser-restore-progress");
    const result = block.querySelector("#browser-restore-result");
    const say = (text, error = false) => {
      status.hidden = false;
      status.textContent = text;
      status.className = `ht-status ${error ? "ht-error" : "ht-info"}`;
    };
    block.dataset.state = "working";
    result.hidden = true;
    progress.hidden = false;
    progress.value = 0;
    say(`Restoring ${file.name} in this browser...`);
    try {
      const base = new URL("viewer/", window.location.href.replace(/[?#].*$/, "").replace(/[^/]*$/, ""));
      const {restore} = await import(new URL("hyperthumb.js", base).href);
      const photo = await restore(await file.arrayBuffer(), {
        decoder: block.querySelector("#browser-restore-decoder").value, backend: "auto",
        onProgress: (done, stage) => { progress.value = done; say(`${stage[0].toUpperCase()}${stage.slice(1)}...`); },
      });
      const canvas = document.createElement("canvas");
      [canvas.width, canvas.height] = [photo.width, photo.height];
      canvas.getContext("2d").putImageData(new ImageData(photo.data, photo.width, photo.height), 0, 0);
      const png = await new Promise((resolve) => canvas.toBlob(resolve, "image/png"));
      const url = URL.createObjectURL(png), old = result.querySelector("img").src;
      if (old.startsWith("blob:")) URL.revokeObjectURL(old);
      result.querySelector("img").src = url;
      Object.assign(result.querySelector("a"), {href: url, download: `${file.name.replace(/\.[^.]*$/, "")}.restored.png`});
      result.hidden = false;
      const where = photo.backend === "webgpu" ? "WebGPU" : `WebAssembly, ${photo.threads} thread${photo.threads === 1 ? "" : "s"}`;
      say(`Restored a ${photo.width}x${photo.height} photo in this browser in ${photo.seconds.toFixed(1)} s (${where}).`);
      block.dataset.state = "restored";
    } catch (error) {
      say(error.name === "ThumbnailError" ? error.message : `This browser could not restore the file (${error.message || error}).`, true);
      block.dataset.state = "error";
    } finally {
      progress.hidden = true;
      restoring = false;
    }
  }
  document.addEventListener("change", (event) => {
    if (event.target.matches("#browser-restore-file, #browser-restore-decoder")) restoreHere();
  });
}

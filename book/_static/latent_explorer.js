/* The web book's explorers: a chapter's trained networks, exported as ONNX when the book is
 * built (vae_helpers.LatentExplorer.static_html, DiffusionExplorer.static_html), run in the page
 * by ONNX Runtime Web on single-threaded WebAssembly, served from the book itself
 * (_static/vendor/onnxruntime). No kernel, no network, no special server headers.
 *
 * A page shows each explorer's picture at once; the runtime and the model load only when the
 * explorer first comes into view or is touched, so a reader who never gets there downloads none
 * of it. A latent explorer then gets continuous sliders, a draggable marker on the latent map, a
 * drawing pad (mouse and touch) whose digit is preprocessed as MNIST was and encoded live, and
 * an interpolation strip; a diffusion explorer (config.kind "diffusion") draws chains of its
 * prior's reverse steps and shows them decoded at the step its slider picks. The names of the
 * parts, and of the properties this script sets on the explorer, come with its settings
 * (config.page): vae_helpers.widgets.PAGE is their one source. Tests and benchmarks read the
 * small state object (`hooks`), whose fields are replaced, never grown.
 */
(function () {
  "use strict";
  const ROOT = "vae-latent-explorer";  // the explorer's class: PAGE["classes"]["root"]
  const SIDE = 28;  // MNIST images are 28 x 28 ...
  const BOX = 20;   // ... with the digit fitted into a 20 x 20 box, centered by its center of mass
  const RUNTIME = document.currentScript.src.replace(/[^/]*$/, "vendor/onnxruntime/");

  let runtime = null;
  function loadRuntime() {  // one <script> per page, only on pages with an explorer
    runtime = runtime || new Promise((resolve, reject) => {
      const tag = document.createElement("script");
      tag.src = RUNTIME + "ort.wasm.min.js";
      tag.onload = () => {
        ort.env.wasm.numThreads = 1;  // no SharedArrayBuffer, so no cross-origin isolation
        ort.env.wasm.proxy = false;
        ort.env.wasm.wasmPaths = RUNTIME;
        resolve(window.ort);
      };
      tag.onerror = () => reject(new Error("could not load " + tag.src));
      document.head.append(tag);
    });
    return runtime;
  }

  function paint(canvas, pixels, offset = 0) {  // gray levels in [0, 1], white on black
    const context = canvas.getContext("2d");
    const image = context.createImageData(SIDE, SIDE);
    for (let i = 0; i < SIDE * SIDE; i++) {
      const v = Math.round(255 * pixels[offset + i]);
      image.data.set([v, v, v, 255], 4 * i);
    }
    context.putImageData(image, 0, 0);
  }

  /* The pad's ink as MNIST's preprocessing made it: the digit's bounding box scaled to fit a
   * 20 x 20 box (aspect kept, anti-aliased), then placed in 28 x 28 with its center of mass at
   * the center. Returns 784 gray levels in [0, 1], or null for an empty pad. */
  function mnistInput(pad) {
    const { width, height } = pad;
    const ink = pad.getContext("2d").getImageData(0, 0, width, height).data;
    let left = width, top = height, right = -1, bottom = -1;
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        if (ink[4 * (y * width + x)] > 0) {
          left = Math.min(left, x); right = Math.max(right, x);
          top = Math.min(top, y); bottom = Math.max(bottom, y);
        }
      }
    }
    if (right < 0) return null;
    const w = right - left + 1, h = bottom - top + 1, scale = BOX / Math.max(w, h);
    const boxW = Math.max(1, Math.round(w * scale)), boxH = Math.max(1, Math.round(h * scale));
    const box = document.createElement("canvas");
    box.width = boxW; box.height = boxH;
    const context = box.getContext("2d");
    context.imageSmoothingQuality = "high";
    context.drawImage(pad, left, top, w, h, 0, 0, boxW, boxH);
    const small = context.getImageData(0, 0, boxW, boxH).data;
    let mass = 0, mx = 0, my = 0;
    for (let y = 0; y < boxH; y++) {
      for (let x = 0; x < boxW; x++) {
        const v = small[4 * (y * boxW + x)] / 255;
        mass += v; mx += v * x; my += v * y;
      }
    }
    const clamp = (v, hi) => Math.min(Math.max(v, 0), hi);
    const dx = clamp(Math.round((SIDE - 1) / 2 - mx / mass), SIDE - boxW);
    const dy = clamp(Math.round((SIDE - 1) / 2 - my / mass), SIDE - boxH);
    const x = new Float32Array(SIDE * SIDE);
    for (let y = 0; y < boxH; y++) {
      for (let i = 0; i < boxW; i++) x[(y + dy) * SIDE + i + dx] = small[4 * (y * boxW + i)] / 255;
    }
    return x;
  }

  /* ONNX Runtime runs one call per session at a time: tasks queue, one after another. Sets
   * hooks.idle(), a promise for the end of the queued work; returns the function that queues. */
  function queue(hooks) {
    let last = Promise.resolve();
    hooks.idle = async () => { let seen; do { seen = last; await seen; } while (seen !== last); };
    return (task) => {
      const done = last.then(task);
      last = done.catch(() => {});
      return done;
    };
  }

  function capture(element, event) {  // keep a drag's events when it leaves the element
    try {
      element.setPointerCapture(event.pointerId);
    } catch (error) { /* a pointer that is not down, as in an event made up by a script */ }
  }

  async function start(root, config, find, hooks) {
    const limit = config.limit, [axLeft, axBottom, axWidth, axHeight] = config.axes;
    Object.assign(hooks, { decodes: 0, lastDecodeMs: null, last: null, encoding: null,
      strip: null });
    const ort = await loadRuntime();
    const [encoder, decoder] = await Promise.all([config.models.encoder, config.models.decoder]
      .map((url) => ort.InferenceSession.create(url)));
    const exclusive = queue(hooks);

    const labels = (n, digit) =>
      new ort.Tensor("int64", BigInt64Array.from({ length: n }, () => BigInt(digit)), [n]);
    async function decode(zs, digit) {  // zs: [[z1, z2], ...] -> Float32Array of n x 784
      const feeds = { z: new ort.Tensor("float32", Float32Array.from(zs.flat()), [zs.length, 2]) };
      if (config.conditional) feeds.y = labels(zs.length, digit);
      return (await decoder.run(feeds)).pixels.data;
    }
    async function encode(x, digit) {  // 784 gray levels -> {mu, logVar}
      const feeds = { x: new ort.Tensor("float32", x, [1, SIDE * SIDE]) };
      if (config.conditional) feeds.y = labels(1, digit);
      const out = await encoder.run(feeds);
      return { mu: Array.from(out.mu.data), logVar: Array.from(out.log_var.data) };
    }

    const state = { z: [0, 0], digit: config.digits[0] || 0, drawn: null };
    const sliders = [find("z1"), find("z2")], select = find("digit-select");
    const map = find("map"), marker = find("marker"), ellipse = find("ellipse");
    const place = (el, z) => {  // position on the map picture of code z (clamped to the square)
      const f = (v) => (Math.min(Math.max(v, -limit), limit) + limit) / (2 * limit);
      el.style.left = 100 * (axLeft + axWidth * f(z[0])) + "%";
      el.style.top = 100 * (1 - axBottom - axHeight * f(z[1])) + "%";
    };

    // The view: decode the current z (and digit) whenever it changes; requests made while a
    // decode runs merge into the next one, so the page follows a fast drag.
    let viewWanted = false;
    function showZ() {
      sliders.forEach((s, i) => {
        s.value = state.z[i];
        find(`z${i + 1}-value`).textContent = state.z[i].toFixed(2);
      });
      place(marker, state.z);
      if (viewWanted) return;
      viewWanted = true;
      exclusive(async () => {
        viewWanted = false;
        const z = state.z.slice(), digit = state.digit, t0 = performance.now();
        const pixels = await decode([z], digit);
        hooks.lastDecodeMs = performance.now() - t0;
        paint(find("decoded"), pixels);
        hooks.last = { z, digit, pixels: Array.from(pixels) };
        hooks.decodes += 1;
        if (hooks.firstImageMs === null) hooks.firstImageMs = performance.now();
      });
    }
    sliders.forEach((s, i) => s.addEventListener("input", () => {
      state.z[i] = Number(s.value);
      showZ();
    }));
    if (select) {  // the conditional model: the same codes, decoded as another digit
      select.addEventListener("change", () => {
        state.digit = Number(select.value);
        showZ();
        interpolate();
      });
    }

    // Dragging the marker (or clicking anywhere on the map) moves z there.
    function zAt(event) {
      const r = map.getBoundingClientRect();
      const fx = (event.clientX - r.left) / r.width, fy = (event.clientY - r.top) / r.height;
      const z = [(fx - axLeft) / axWidth, (1 - axBottom - fy) / axHeight];
      return z.map((v) => Math.min(Math.max(-limit + 2 * limit * v, -limit), limit));
    }
    map.addEventListener("pointerdown", (event) => {
      capture(map, event); state.z = zAt(event); showZ(); event.preventDefault();
    });
    map.addEventListener("pointermove", (event) => {
      if (event.buttons || event.pointerType === "touch") { state.z = zAt(event); showZ(); }
    });

    // The drawing pad: white strokes on black, as MNIST; every stroke is encoded as it grows.
    const pad = find("pad"), ink = pad.getContext("2d", { willReadFrequently: true });
    function clearPad() {
      ink.fillStyle = "black"; ink.fillRect(0, 0, pad.width, pad.height);
      const black = new Float32Array(SIDE * SIDE);
      [find("input"), find("reconstruction")].forEach((canvas) => paint(canvas, black));
      ellipse.hidden = true; state.drawn = null; hooks.encoding = null;
    }
    clearPad();
    let encodeWanted = false;
    function encodeDrawing() {
      if (encodeWanted) return;
      encodeWanted = true;
      exclusive(async () => {
        encodeWanted = false;
        const x = mnistInput(pad);
        if (!x) return;
        paint(find("input"), x);
        const { mu, logVar } = await encode(x, state.digit);
        const pixels = await decode([mu], state.digit);
        paint(find("reconstruction"), pixels);
        hooks.encoding = {
          input: Array.from(x), digit: state.digit, mu, logVar, pixels: Array.from(pixels),
        };
        state.drawn = mu;
        place(ellipse, mu);
        const sigma = logVar.map((v) => Math.exp(v / 2));
        ellipse.style.width = 100 * axWidth * sigma[0] / limit + "%";   // 2 sigma across,
        ellipse.style.height = 100 * axHeight * sigma[1] / limit + "%"; // of 2 limit
        ellipse.hidden = false;
        const pair = (v) => `(${v[0].toFixed(2)}, ${v[1].toFixed(2)})`;
        find("encoding").textContent = `Your digit: μ = ${pair(mu)}, σ = ${pair(sigma)}; `
          + "the blue ellipse on the map is one σ around μ.";
        state.z = mu.slice();
        showZ();
      });
    }
    let last = null;
    const padPoint = (event) => {
      const r = pad.getBoundingClientRect();
      return [(event.clientX - r.left) * pad.width / r.width,
        (event.clientY - r.top) * pad.height / r.height];
    };
    pad.addEventListener("pointerdown", (event) => {
      capture(pad, event); last = padPoint(event); event.preventDefault();
    });
    pad.addEventListener("pointermove", (event) => {
      if (!last || !(event.buttons || event.pointerType === "touch")) return;
      const point = padPoint(event);
      // About MNIST's stroke width once the digit is shrunk into its 20 x 20 box.
      Object.assign(ink, { strokeStyle: "white", lineWidth: 16, lineCap: "round",
        lineJoin: "round" });
      ink.beginPath(); ink.moveTo(...last); ink.lineTo(...point); ink.stroke();
      last = point;
      encodeDrawing();
    });
    const endStroke = () => { last = null; };
    pad.addEventListener("pointerup", endStroke);
    pad.addEventListener("pointercancel", endStroke);
    find("clear").addEventListener("click", clearPad);

    // Interpolation: decode codes evenly spaced on the line between two chosen ones.
    const tests = config.testDigits.map((t) => ({
      label: t.label,
      x: Float32Array.from(atob(t.pixels), (c) => c.charCodeAt(0) / 255),
    }));
    const ends = [find("from"), find("to")];
    const choices = [["marker", "the marker"], ["drawing", "your digit"],
      ...tests.map((t, i) => ["test" + i, "a test " + t.label])];
    ends.forEach((end, k) => {
      choices.forEach(([value, text]) => end.append(new Option(text, value)));
      end.value = k === 0 ? "marker" : (tests.length ? "test7" : "marker");
    });
    async function endpoint(choice) {  // runs inside the queue
      if (choice === "marker") return state.z.slice();
      if (choice === "drawing") {
        if (!state.drawn) throw new Error("draw a digit first");
        return state.drawn.slice();
      }
      const test = tests[Number(choice.slice(4))];
      return (await encode(test.x, config.conditional ? test.label : 0)).mu;
    }
    function interpolate() {
      const n = Math.min(Math.max(Math.round(Number(find("steps").value)) || 2, 2), 12);
      return exclusive(async () => {
        const [a, b] = [await endpoint(ends[0].value), await endpoint(ends[1].value)];
        const zs = Array.from({ length: n },
          (_, i) => [0, 1].map((d) => a[d] + (b[d] - a[d]) * i / (n - 1)));
        const pixels = await decode(zs, state.digit);
        const strip = find("strip");
        strip.replaceChildren(...zs.map((_, i) => {
          const canvas = document.createElement("canvas");
          canvas.width = canvas.height = SIDE;
          paint(canvas, pixels, i * SIDE * SIDE);
          return canvas;
        }));
        hooks.strip = { zs, digit: state.digit, pixels: Array.from(pixels) };
      }).then(() => { find("status").textContent = ""; },
        (error) => { find("status").textContent = error.message; });
    }
    find("interpolate").addEventListener("click", interpolate);
    hooks.interpolate = interpolate;

    find("fallback").hidden = true;
    find("live").hidden = false;
    keepClear([map, pad], config.page.classes["touch-on-screen"]);
    showZ();
    interpolate();
    await hooks.idle();
  }

  /* The diffusion explorer: n chains of the prior's reverse steps, z_T ~ N(0, I), then
   * z_{t-1} = (z_t - beta_t / sqrt(1 - abar_t) eps(z_t, t)) / sqrt(alpha_t) + sqrt(var_t) noise
   * for t = T..2 and the mean alone at t = 1, as LatentDiffusion.sample does; every step's codes
   * are decoded at once, and the slider shows the images of one step. */
  async function startDiffusion(root, config, find, hooks) {
    const { n, nz, steps: T, schedule: s } = config;
    Object.assign(hooks, { chain: null, last: null, samples: 0 });
    const ort = await loadRuntime();
    const [denoiser, decoder] = await Promise.all([config.models.denoiser, config.models.decoder]
      .map((url) => ort.InferenceSession.create(url)));
    const exclusive = queue(hooks);
    const gaussian = () => {  // Box-Muller
      const u = 1 - Math.random(), v = Math.random();
      return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
    };
    const size = n * nz, canvases = [...find("frames").querySelectorAll("canvas")];
    const slider = find("step");
    let frames = null;  // decoded images, (T + 1) x n x 784, from z_T (position 0) to z_0

    function show() {
      const position = Number(slider.value), t = T - position, at = position * n * SIDE * SIDE;
      canvases.forEach((canvas, i) => paint(canvas, frames, at + i * SIDE * SIDE));
      find("step-value").textContent = `t = ${t}` + (t === 0 ? " (z₀: the samples)" : "");
      hooks.last = { position, pixels: Array.from(frames.subarray(at, at + n * SIDE * SIDE)) };
      if (hooks.firstImageMs === null) hooks.firstImageMs = performance.now();
    }
    // noise: T x n x nz numbers, as LatentDiffusion.sample's `noise` (z_T, then each step's).
    function sample(noise) {
      noise = noise ? Float32Array.from(noise) : Float32Array.from({ length: T * size }, gaussian);
      if (noise.length !== T * size) throw new Error(`noise must hold ${T * size} numbers`);
      return exclusive(async () => {
        const path = new Float32Array((T + 1) * size);
        path.set(noise.subarray(0, size));
        const steps = new ort.Tensor("float32", new Float32Array(n), [n]);
        for (let t = T; t >= 1; t--) {
          const from = (T - t) * size, z = path.subarray(from, from + size);
          steps.data.fill(t);
          const feeds = { z: new ort.Tensor("float32", z.slice(), [n, nz]), t: steps };
          const eps = (await denoiser.run(feeds)).eps.data, i = t - 1;
          const c = s.betas[i] / Math.sqrt(1 - s.alphaBars[i]), a = Math.sqrt(s.alphas[i]);
          const sd = t > 1 ? Math.sqrt(s.variances[i]) : 0, extra = (T - t + 1) * size;
          for (let j = 0; j < size; j++) {
            path[from + size + j] = (z[j] - c * eps[j]) / a + (t > 1 ? sd * noise[extra + j] : 0);
          }
        }
        const out = await decoder.run({ z: new ort.Tensor("float32", path, [(T + 1) * n, nz]) });
        frames = out.pixels.data;
        hooks.chain = { path: Array.from(path) };
        hooks.samples += 1;
        show();
      });
    }
    slider.addEventListener("input", () => { if (frames) show(); });
    find("sample").addEventListener("click", () => sample());
    hooks.sample = sample;
    await sample();
    find("fallback").hidden = true;
    find("live").hidden = false;
  }

  /* The theme's "back to top" button floats over the middle of a narrow window while one
   * scrolls up: it stays away while a map or a drawing pad, which take drags and strokes, is on
   * screen (book.css hides it while the page's <html> element has the class named by `hide`). */
  const onScreen = new Set();
  let watcher = null;
  function keepClear(elements, hide) {
    if (!("IntersectionObserver" in window)) return;
    watcher = watcher || new IntersectionObserver((changes) => {
      changes.forEach((c) => onScreen[c.isIntersecting ? "add" : "delete"](c.target));
      document.documentElement.classList.toggle(hide, onScreen.size > 0);
    });
    elements.forEach((element) => watcher.observe(element));
  }

  /* Each explorer starts when it first comes into view or is touched (or when the property
   * `start` is called): until then its picture stands, and nothing more is downloaded. */
  function startAll() {
    const waiting = new Map();  // explorer element -> its start function
    const observer = "IntersectionObserver" in window ? new IntersectionObserver((changes) => {
      changes.filter((c) => c.isIntersecting && waiting.has(c.target))
        .forEach((c) => waiting.get(c.target)());
    }, { rootMargin: "200px 0px" }) : null;
    document.querySelectorAll("." + ROOT).forEach((root) => {
      const config = JSON.parse(root.querySelector(":scope > script[type='application/json']")
        .textContent);
      const { classes, properties } = config.page;
      const find = (part) => root.querySelector(":scope ." + classes[part]);
      const hooks = root[properties.state] = { failed: null, startedMs: null, firstImageMs: null };
      let reason = null;
      if (location.protocol === "file:") {  // ONNX Runtime's module and the models are blocked
        reason = "the page was opened as a file";
        find("why").hidden = true;
        find("served").hidden = false;
      } else if (typeof WebAssembly !== "object") {
        reason = "this browser offers no WebAssembly";
      }
      if (reason) {  // the fallback picture stays
        hooks.failed = reason;
        root[properties.ready] = Promise.resolve();
        root[properties.start] = () => root[properties.ready];
        return;
      }
      find("why").hidden = true;
      const loading = find("loading");
      loading.textContent = "The live explorer starts when you scroll to it or touch it.";
      loading.hidden = false;
      let settle;
      root[properties.ready] = new Promise((resolve) => { settle = resolve; });
      let started = null;
      const begin = () => {
        started = started || (async () => {
          waiting.delete(root);
          if (observer) observer.unobserve(root);
          loading.textContent = "Loading the live explorer…";
          hooks.startedMs = performance.now();
          const run = config.kind === "diffusion" ? startDiffusion : start;
          await run(root, config, find, hooks);
        })().catch((error) => {
          hooks.failed = String(error);
          find("live").hidden = true;
          find("fallback").hidden = false;
          loading.textContent = "The live explorer could not start: " + error.message;
          console.error("explorer:", error);
        }).then(settle);
        return root[properties.ready];
      };
      root[properties.start] = begin;
      waiting.set(root, begin);
      ["pointerdown", "focusin"].forEach((type) => root.addEventListener(type, begin,
        { once: true }));
      if (observer) observer.observe(root);
      else begin();
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", startAll);
  else startAll();
})();

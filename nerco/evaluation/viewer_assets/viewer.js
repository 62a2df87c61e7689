/* NeRCo result viewer: sorting, filtering and a large view with synchronised zoom and pan.
 * No dependencies. It reads the table the page holds:
 *   thead tr.cols th[data-c][data-label]          one per column (input, methods, ground truth)
 *   tbody tr.r[data-name][data-w][data-h]          one per image (w, h: its size in pixels)
 *     td.c[data-c] > a[href] > img.t               the thumbnail, linked to the full image
 *     td.c [data-m][data-v]                        a score (data-v: full precision, "" = n/a)
 *   button.sort[data-sort=name] / [data-c][data-m] the sort buttons
 */
(function () {
  "use strict";
  const table = document.querySelector("table.grid");
  if (!table) return;
  const root = document.documentElement;
  const tbody = table.tBodies[0];
  const rows = Array.from(tbody.rows);
  rows.forEach((row, i) => { row.dataset.i = i; });
  const columns = Array.from(table.querySelectorAll("thead tr.cols th[data-c]"))
    .map(th => ({ id: th.dataset.c, label: th.dataset.label }));
  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: "base" });
  const clamp = (x, lo, hi) => Math.min(hi, Math.max(lo, x));

  /* sticky header rows sit below the bar */
  function offsets() {
    const bar = document.querySelector("header.bar");
    const cols = table.querySelector("thead tr.cols");
    root.style.setProperty("--bar-h", (bar ? bar.offsetHeight : 0) + "px");
    root.style.setProperty("--cols-h", (cols ? cols.offsetHeight : 0) + "px");
  }
  offsets();
  window.addEventListener("resize", offsets);

  /* ---------------------------------------------------------------- sorting */
  function score(row, c, m) {
    const cell = row.querySelector(`td[data-c="${c}"]`);
    const el = cell && Array.from(cell.querySelectorAll("[data-m]")).find(s => s.dataset.m === m);
    return !el || el.dataset.v === "" ? NaN : parseFloat(el.dataset.v);
  }
  let sorted = null;
  function sortBy(button) {
    const byName = button.dataset.sort === "name";
    const key = byName ? "name" : button.dataset.c + "\u0000" + button.dataset.m;
    const dir = sorted && sorted.key === key ? -sorted.dir : 1;  // again: reversed
    sorted = { key, dir };
    const keyed = rows.map(r => [r, byName ? r.dataset.name : score(r, button.dataset.c,
                                                                     button.dataset.m)]);
    keyed.sort((a, b) => {
      if (byName) return dir * collator.compare(a[1], b[1]) || a[0].dataset.i - b[0].dataset.i;
      const x = a[1], y = b[1];
      if (isNaN(x) || isNaN(y)) return isNaN(x) - isNaN(y);  // n/a last either way
      return x === y ? a[0].dataset.i - b[0].dataset.i : dir * (x < y ? -1 : 1);
    });
    const frag = document.createDocumentFragment();
    keyed.forEach(k => frag.appendChild(k[0]));
    tbody.appendChild(frag);
    table.querySelectorAll("button.sort").forEach(b => b.removeAttribute("aria-sort"));
    button.setAttribute("aria-sort", dir > 0 ? "ascending" : "descending");
  }
  table.querySelectorAll("button.sort").forEach(b => b.addEventListener("click", () => sortBy(b)));

  /* ---------------------------------------------------------------- filter, size */
  const filter = document.getElementById("filter");
  const count = document.getElementById("count");
  function applyFilter() {
    const terms = filter.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    rows.forEach(r => {
      const name = r.dataset.name.toLowerCase();
      r.hidden = !terms.every(t => name.includes(t));
      shown += r.hidden ? 0 : 1;
    });
    if (count) count.textContent = `${shown} of ${rows.length} shown`;
  }
  if (filter) {
    filter.addEventListener("input", applyFilter);
    applyFilter();
  }
  const size = document.getElementById("thumb");
  if (size) size.addEventListener("input", () => root.style.setProperty("--tw", size.value + "px"));

  /* ---------------------------------------------------------------- large view */
  const lv = document.createElement("div");
  lv.id = "lv";
  lv.hidden = true;
  lv.innerHTML = '<div class="top">' +
    '<button data-act="prev" title="previous image (\u2190)">\u2039</button>' +
    '<span class="name"></span><span class="pos"></span>' +
    '<button data-act="next" title="next image (\u2192)">\u203a</button>' +
    '<button data-act="mode" aria-pressed="false" title="before/after slider (s)">slider</button>' +
    '<select data-side="a" title="left of the slider"></select>' +
    '<select data-side="b" title="right of the slider"></select>' +
    '<span class="zoom"></span>' +
    '<button data-act="fit" title="fit the view (0, double-click)">fit</button>' +
    '<button data-act="one" title="one image pixel per screen pixel (1)">1:1</button>' +
    '<span class="hint">wheel: zoom \u00b7 drag: pan \u00b7 \u2190 \u2192: image \u00b7 Esc: close</span>' +
    '<button data-act="close" title="close (Esc)">\u2715</button></div><div class="panes"></div>';
  document.body.appendChild(lv);
  const box = lv.querySelector(".panes");
  const selects = { a: lv.querySelector('select[data-side="a"]'),
                    b: lv.querySelector('select[data-side="b"]') };
  const view = { row: null, z: 1, cx: 0.5, cy: 0.5, slider: false, split: 0.5, a: null, b: null };
  let panes = [];

  function cellsOf(row) {
    return columns.map(col => {
      const td = row.querySelector(`td[data-c="${col.id}"]`);
      const link = td && td.querySelector("a[href]");
      if (!link) return null;
      const scores = Array.from(td.querySelectorAll("[data-m]"))
        .map(s => ({ text: s.textContent.trim(), best: s.classList.contains("best") }));
      return { label: col.label, href: link.getAttribute("href"), scores };
    }).filter(Boolean);
  }
  function visibleRows() { return Array.from(tbody.rows).filter(r => !r.hidden); }

  function caption(el, cells) {
    cells.forEach((cell, k) => {
      if (k) el.append(" | ");
      const b = document.createElement("b");
      b.textContent = cell.label;
      el.append(b);
      cell.scores.forEach(s => {
        const span = document.createElement("span");
        span.textContent = " \u00b7 " + s.text;
        if (s.best) span.className = "best";
        el.append(span);
      });
    });
  }
  function makePane(cells, slider) {
    const el = document.createElement("div");
    el.className = "pane";
    const cap = document.createElement("div");
    cap.className = "cap";
    caption(cap, cells);
    const v = document.createElement("div");
    v.className = "view";
    const pane = { el, view: v, imgs: [], clip: null, handle: null };
    cells.forEach((cell, k) => {
      const img = new Image();
      img.alt = cell.label;
      img.draggable = false;
      img.addEventListener("load", render);
      img.src = cell.href;
      pane.imgs.push(img);
      if (slider && k === 1) {
        pane.clip = document.createElement("div");
        pane.clip.className = "clip";
        pane.clip.appendChild(img);
        v.appendChild(pane.clip);
      } else {
        v.appendChild(img);
      }
    });
    if (slider) {
      pane.handle = document.createElement("div");
      pane.handle.className = "handle";
      v.appendChild(pane.handle);
      cells.forEach((cell, k) => {
        const tag = document.createElement("span");
        tag.className = "tag";
        tag.style[k ? "right" : "left"] = "6px";
        tag.textContent = cell.label;
        v.appendChild(tag);
      });
    }
    el.append(cap, v);
    box.appendChild(el);
    attach(pane);
    panes.push(pane);
  }
  function fillSelect(select, cells, chosen) {
    select.textContent = "";
    cells.forEach(cell => select.add(new Option(cell.label, cell.label, false,
                                                cell.label === chosen)));
  }
  function build() {
    const cells = cellsOf(view.row);
    const labels = cells.map(c => c.label);
    if (!labels.includes(view.a)) view.a = labels[0];
    if (!labels.includes(view.b) || view.b === view.a) view.b = labels.find(l => l !== view.a);
    fillSelect(selects.a, cells, view.a);
    fillSelect(selects.b, cells, view.b);
    const slider = view.slider && cells.length > 1;
    Object.values(selects).forEach(s => { s.hidden = !slider; });
    lv.querySelector('[data-act="mode"]').setAttribute("aria-pressed", String(slider));
    box.textContent = "";
    panes = [];
    if (slider) makePane([view.a, view.b].map(l => cells[labels.indexOf(l)]), true);
    else cells.forEach(cell => makePane([cell], false));
    const n = Math.max(panes.length, 1), perRow = n <= 3 ? n : Math.ceil(Math.sqrt(n));
    box.style.gridTemplateColumns = `repeat(${perRow}, minmax(0, 1fr))`;
    box.style.gridTemplateRows = `repeat(${Math.ceil(n / perRow)}, minmax(0, 1fr))`;
    const list = visibleRows();
    lv.querySelector(".name").textContent = view.row.dataset.name;
    lv.querySelector(".pos").textContent = `${list.indexOf(view.row) + 1} / ${list.length}`;
    render();
    const next = list[list.indexOf(view.row) + 1];  // warm the cache for the next image
    if (next) cellsOf(next).forEach(cell => { new Image().src = cell.href; });
  }

  function dims(img) {
    return [img.naturalWidth || +view.row.dataset.w || 0, img.naturalHeight || +view.row.dataset.h || 0];
  }
  function fitOf(pane, img) {
    const [w, h] = dims(img);
    return w && h ? Math.min(pane.view.clientWidth / w, pane.view.clientHeight / h) : 0;
  }
  function render() {
    let shown = 0;
    panes.forEach(pane => {
      const W = pane.view.clientWidth, H = pane.view.clientHeight;
      pane.imgs.forEach(img => {
        const [w, h] = dims(img);
        if (!w || !h) return;
        const s = fitOf(pane, img) * view.z;
        img.style.width = w + "px";
        img.style.height = h + "px";
        img.style.transform = `translate(${W / 2 - s * view.cx * w}px, ` +
                              `${H / 2 - s * view.cy * h}px) scale(${s})`;
        img.dataset.scale = s;
        shown = shown || s;
      });
      pane.view.classList.toggle("pixels", shown >= 2);
      if (pane.clip) {
        const x = view.split * W;
        pane.clip.style.clipPath = `inset(0 0 0 ${x}px)`;
        pane.handle.style.left = x + "px";
      }
    });
    lv.querySelector(".zoom").textContent = shown ? `${Math.round(shown * 100)} %` : "";
  }
  function zoomAt(pane, factor, px, py) {
    const img = pane.imgs[0], [w, h] = dims(img), fit = fitOf(pane, img);
    if (!fit) return;
    const s = fit * view.z;
    view.z = clamp(view.z * factor, 0.25, 64 / fit);
    const s2 = fit * view.z;
    view.cx += (px - pane.view.clientWidth / 2) * (1 / s - 1 / s2) / w;
    view.cy += (py - pane.view.clientHeight / 2) * (1 / s - 1 / s2) / h;
    render();
  }
  function attach(pane) {
    const v = pane.view;
    v.addEventListener("wheel", e => {
      e.preventDefault();
      const r = v.getBoundingClientRect(), dy = e.deltaMode === 1 ? e.deltaY * 16 : e.deltaY;
      zoomAt(pane, Math.exp(-dy * 0.002), e.clientX - r.left, e.clientY - r.top);
    }, { passive: false });
    v.addEventListener("pointerdown", e => {
      if (e.button !== 0) return;
      const onHandle = e.target === pane.handle;
      v.setPointerCapture(e.pointerId);
      v.classList.add("dragging");
      let last = [e.clientX, e.clientY];
      const move = ev => {
        if (onHandle) {
          const r = v.getBoundingClientRect();
          view.split = clamp((ev.clientX - r.left) / r.width, 0, 1);
        } else {
          const img = pane.imgs[0], [w, h] = dims(img), s = fitOf(pane, img) * view.z;
          if (!s) return;
          view.cx -= (ev.clientX - last[0]) / (s * w);
          view.cy -= (ev.clientY - last[1]) / (s * h);
          last = [ev.clientX, ev.clientY];
        }
        render();
      };
      const up = () => {
        v.classList.remove("dragging");
        ["pointermove", "pointerup", "pointercancel"].forEach((t, k) =>
          v.removeEventListener(t, k ? up : move));
      };
      v.addEventListener("pointermove", move);
      v.addEventListener("pointerup", up);
      v.addEventListener("pointercancel", up);
    });
    v.addEventListener("dblclick", () => setZoom(1));
  }
  function setZoom(z) {
    view.z = z;
    view.cx = view.cy = 0.5;
    render();
  }
  function open(row) {
    view.row = row;
    view.z = 1;
    view.cx = view.cy = 0.5;
    lv.hidden = false;
    document.body.style.overflow = "hidden";
    build();
  }
  function close() {
    lv.hidden = true;
    box.textContent = "";
    panes = [];
    document.body.style.overflow = "";
    if (view.row) view.row.scrollIntoView({ block: "nearest" });
  }
  function step(d) {
    const list = visibleRows(), k = list.indexOf(view.row) + d;
    if (k >= 0 && k < list.length) {
      view.row = list[k];
      build();  // zoom and pan stay: the same region of the next image
    }
  }
  const actions = {
    prev: () => step(-1), next: () => step(1), close,
    mode: () => {  // the same magnification in the new layout
      const before = panes.length ? fitOf(panes[0], panes[0].imgs[0]) * view.z : 0;
      view.slider = !view.slider;
      build();
      const fit = panes.length ? fitOf(panes[0], panes[0].imgs[0]) : 0;
      if (before && fit) { view.z = before / fit; render(); }
    },
    fit: () => setZoom(1),
    one: () => {
      const fit = panes.length ? fitOf(panes[0], panes[0].imgs[0]) : 0;
      if (fit) { view.z = 1 / fit; render(); }
    },
  };
  lv.querySelector(".top").addEventListener("click", e => {
    const b = e.target.closest("button[data-act]");
    if (b) actions[b.dataset.act]();
  });
  Object.entries(selects).forEach(([side, select]) => select.addEventListener("change", () => {
    view[side] = select.value;
    if (view.a === view.b) view[side === "a" ? "b" : "a"] = null;
    select.blur();
    build();
  }));
  document.addEventListener("keydown", e => {
    if (lv.hidden || e.altKey || e.ctrlKey || e.metaKey) return;
    const keys = {
      ArrowRight: actions.next, ArrowLeft: actions.prev, Escape: close, s: actions.mode,
      "0": actions.fit, "1": actions.one,
      "+": () => panes.length && zoomCentre(1.25), "=": () => panes.length && zoomCentre(1.25),
      "-": () => panes.length && zoomCentre(0.8),
    };
    if (!keys[e.key]) return;
    e.preventDefault();
    keys[e.key]();
  });
  function zoomCentre(f) {
    zoomAt(panes[0], f, panes[0].view.clientWidth / 2, panes[0].view.clientHeight / 2);
  }
  window.addEventListener("resize", () => { if (!lv.hidden) render(); });
  tbody.addEventListener("click", e => {
    const img = e.target.closest("img.t");
    if (!img || e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey) return;
    e.preventDefault();
    open(img.closest("tr"));
  });
})();

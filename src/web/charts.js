/**
 * MlopsCharts: the chart kit of mlops-service, shared by the dashboard (GET /) and the benchmark
 * comparison report, so both have one look. Plain browser JavaScript, no build step. Load uPlot
 * (uPlot.iife.min.js + uPlot.min.css), then this file and charts.css; a standalone HTML file may
 * inline all four, in that order. It defines the global `MlopsCharts`:
 *
 *   MlopsCharts.line(el, { title, x, xKind, series, yLabel, logX?, logY?, markers? })
 *     x: number[] (ascending or not; sorted here), xKind: 'time' | 'number'. Time x values are
 *     milliseconds since the epoch (what Date.now() gives).
 *     series: [{ label, values: (number|null)[] }], values aligned with x; null leaves a gap.
 *     logX / logY: base-10 log scales (values <= 0 are left out).
 *     markers: [{ x, label }]: dashed vertical lines with a label (a deploy, a cold start…).
 *
 *   MlopsCharts.bars(el, { title, labels, series, yLabel })
 *     labels: string[] (one group of bars each), series: [{ label, values: number[] }] (one bar
 *     per series in every group).
 *
 *   MlopsCharts.histogram(el, { title, edges, series, xLabel })
 *     edges: number[] (n + 1 bin boundaries, ascending), series: [{ label, counts: number[] }]
 *     (n counts each; bin i spans edges[i] to edges[i + 1]). Several series overlap translucently.
 *
 *   Optional on all three: height (plot height in CSS px, default 240), xLabel / yLabel (axis
 *   titles), format(v) → string (values in the legend and on the y axis; histogram: both axes),
 *   emptyText (shown instead of a chart when there is nothing to draw), colors (CSS #rrggbb per
 *   series, overriding the palette). line() also takes utc (show time in UTC, e.g. for daily
 *   buckets) and per-series dash ([on, off] px). histogram() also takes logX and yLabel.
 *
 *   Each returns { destroy(), uplot }: destroy() removes the chart (call it before drawing into
 *   the same element again); uplot is the uPlot instance, or null when nothing was drawn. Charts
 *   follow the element's width (ResizeObserver). Colours and fonts come from the --mc-* variables
 *   of charts.css, read when the chart is drawn.
 */
(function (root) {
  'use strict';

  const FALLBACK = ['#2563eb', '#e69f00', '#009e73', '#d55e00', '#7c3aed', '#56b4e9', '#cc79a7', '#6b7280'];

  function theme(el) {
    const cs = getComputedStyle(el);
    const v = (name, fallback) => cs.getPropertyValue(name).trim() || fallback;
    const family = v('--mc-font-family', 'system-ui, sans-serif');
    return {
      palette: FALLBACK.map((c, i) => v(`--mc-${i + 1}`, c)),
      text: v('--mc-text', '#1f2933'),
      muted: v('--mc-muted', '#5f6b7a'),
      grid: v('--mc-grid', '#e3e7ec'),
      font: `12px ${family}`,
      labelFont: `600 12px ${family}`,
    };
  }

  function withAlpha(hex, a) {
    const m = /^#([0-9a-f]{3}|[0-9a-f]{6})$/i.exec(hex);
    if (!m) return hex;
    const h = m[1].length === 3 ? m[1].replace(/./g, (c) => c + c) : m[1];
    const n = parseInt(h, 16);
    return `rgba(${(n >> 16) & 255}, ${(n >> 8) & 255}, ${n & 255}, ${a})`;
  }

  const compactFmt = new Intl.NumberFormat(undefined, { notation: 'compact', maximumFractionDigits: 1 });
  const wholeFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  const smallFmt = new Intl.NumberFormat(undefined, { maximumSignificantDigits: 3 });

  /** Short, readable numbers: 12.3k, 840, 1.25, 0.00123. */
  function formatNumber(v) {
    if (v == null || !Number.isFinite(v)) return '—';
    const a = Math.abs(v);
    if (a >= 10000) return compactFmt.format(v);
    if (a >= 100) return wholeFmt.format(v);
    return smallFmt.format(v);
  }

  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);

  /** Axis tick labels; uPlot passes null for ticks it leaves unlabelled (log scales). */
  const ticks = (format) => (u, splits) => splits.map((v) => (v == null ? '' : format(v)));

  function axis(t, extra) {
    return {
      stroke: t.muted,
      font: t.font,
      labelFont: t.labelFont,
      grid: { stroke: t.grid, width: 1 },
      ticks: { stroke: t.grid, width: 1, size: 4 },
      ...extra,
    };
  }

  /** y from zero for linear scales of non-negative data, with a little head room. */
  function zeroBasedRange(u, min, max) {
    if (!isNum(max)) return [0, 1];
    const lo = isNum(min) && min < 0 ? min * 1.05 : 0;
    const hi = max > lo ? max * 1.05 : lo + 1;
    return [lo, hi];
  }

  function showEmpty(el, o) {
    const box = document.createElement('div');
    box.className = 'mc-empty';
    if (o.title) {
      const title = document.createElement('span');
      title.className = 'mc-empty-title';
      title.textContent = o.title;
      box.append(title);
    }
    box.append(o.emptyText || 'No data yet');
    const wrap = document.createElement('div');
    wrap.append(box);
    el.append(wrap);
  }

  /** Common part: empty the element, draw at its width, follow resizes. */
  function mount(el, o, build) {
    if (el.__mlopsChart) el.__mlopsChart.destroy();
    el.classList.add('mc-chart');
    el.textContent = '';
    const t = theme(el);
    const built = build(t);
    const height = o.height || 240;
    if (!built) {
      showEmpty(el, o);
      const handle = { uplot: null, destroy: () => ((el.textContent = ''), (el.__mlopsChart = undefined)) };
      el.__mlopsChart = handle;
      return handle;
    }
    const widthOf = () => Math.max(160, Math.floor(el.getBoundingClientRect().width) || 600);
    const u = new root.uPlot({ title: o.title, ...built.opts, width: widthOf(), height }, built.data, el);
    let frame = 0;
    // Resizing inside the observer callback can re-trigger it in the same frame; wait for the next.
    const observer = new ResizeObserver(() => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => {
        const w = widthOf();
        if (w !== u.width) u.setSize({ width: w, height });
      });
    });
    observer.observe(el);
    const handle = {
      uplot: u,
      destroy() {
        observer.disconnect();
        cancelAnimationFrame(frame);
        u.destroy();
        el.__mlopsChart = undefined;
      },
    };
    el.__mlopsChart = handle;
    return handle;
  }

  const colorOf = (t, o, i) => (o.colors && o.colors[i]) || t.palette[i % t.palette.length];

  function line(el, o) {
    return mount(el, o, (t) => {
      const xs = o.x || [];
      const list = o.series || [];
      const valid = (v, log) => isNum(v) && (!log || v > 0);
      const order = xs.map((_, i) => i).filter((i) => valid(xs[i], o.logX));
      order.sort((a, b) => xs[a] - xs[b]);
      const data = [order.map((i) => xs[i]), ...list.map((s) => order.map((i) => (valid(s.values[i], o.logY) ? s.values[i] : null)))];
      if (!data.slice(1).some((vals) => vals.some((v) => v !== null))) return null;

      const time = o.xKind === 'time';
      const fmt = o.format || formatNumber;
      const dayOnly = time && data[0].every((v) => v % 86400000 === 0);
      const dateFmt = new Intl.DateTimeFormat(undefined, {
        dateStyle: 'medium',
        ...(dayOnly ? {} : { timeStyle: 'medium' }),
        ...(o.utc ? { timeZone: 'UTC' } : {}),
      });
      const few = data[0].length <= 60;
      const series = [
        {
          label: o.xLabel || (time ? 'Time' : 'x'),
          value: (u, v) => (v == null ? '—' : time ? dateFmt.format(new Date(v)) : formatNumber(v)),
        },
        ...list.map((s, i) => {
          const c = colorOf(t, o, i);
          return {
            label: s.label,
            stroke: c,
            width: 2,
            dash: s.dash,
            fill: list.length === 1 ? withAlpha(c, 0.1) : undefined,
            points: { show: few, size: 6, fill: c, stroke: c },
            value: (u, v) => (v == null ? '—' : fmt(v)),
          };
        }),
      ];
      // A little room each side, so points on the first and last x are not cut in half.
      const span = (u, min, max) => {
        const pad = min !== max ? (max - min) * 0.02 : time ? 43200000 : Math.abs(min) / 10 || 1;
        return [min - pad, max + pad];
      };
      const markers = (o.markers || []).filter((m) => isNum(m.x));
      return {
        data,
        opts: {
          ms: 1,
          ...(time && o.utc ? { tzDate: (ts) => root.uPlot.tzDate(new Date(ts), 'Etc/UTC') } : {}),
          series,
          scales: {
            x: { time, ...(o.logX ? { distr: 3, log: 10 } : { range: span }) },
            y: o.logY ? { distr: 3, log: 10 } : { range: zeroBasedRange },
          },
          axes: [
            axis(t, { label: o.xLabel, ...(time ? {} : { values: ticks(formatNumber) }) }),
            axis(t, { label: o.yLabel, values: ticks(fmt), size: 56 }),
          ],
          cursor: { points: { size: 8 } },
          legend: { live: true },
          hooks: markers.length ? { draw: [(u) => drawMarkers(u, markers, t)] } : {},
        },
      };
    });
  }

  function drawMarkers(u, markers, t) {
    const { ctx, bbox } = u;
    const px = root.uPlot.pxRatio;
    ctx.save();
    ctx.strokeStyle = t.muted;
    ctx.fillStyle = t.text;
    ctx.lineWidth = px;
    ctx.setLineDash([4 * px, 4 * px]);
    ctx.font = t.font.replace('12px', `${Math.round(11 * px)}px`);
    ctx.textBaseline = 'top';
    markers.forEach((m, i) => {
      const x = Math.round(u.valToPos(m.x, 'x', true));
      if (x < bbox.left || x > bbox.left + bbox.width) return;
      ctx.beginPath();
      ctx.moveTo(x, bbox.top);
      ctx.lineTo(x, bbox.top + bbox.height);
      ctx.stroke();
      if (m.label) {
        const w = ctx.measureText(m.label).width;
        const right = x + 4 * px + w <= bbox.left + bbox.width;
        ctx.textAlign = right ? 'left' : 'right';
        ctx.fillText(m.label, right ? x + 4 * px : x - 4 * px, bbox.top + (2 + (i % 3) * 14) * px);
      }
    });
    ctx.restore();
  }

  /** Grouped bars: series `slot` of `count` takes its share of 80 % of each label's width. */
  function barPaths(slot, count) {
    return (u, sidx, i0, i1) => {
      const path = new Path2D();
      const xs = u.data[0];
      const ys = u.data[sidx];
      const unit = Math.abs(u.valToPos(1, 'x', true) - u.valToPos(0, 'x', true));
      const group = unit * 0.8;
      const width = group / count;
      const gap = Math.min(2 * root.uPlot.pxRatio, width * 0.15);
      const base = u.valToPos(Math.max(u.scales.y.min, 0), 'y', true);
      for (let i = i0; i <= i1; i++) {
        const v = ys[i];
        if (!isNum(v)) continue;
        const left = u.valToPos(xs[i], 'x', true) - group / 2 + slot * width;
        const top = u.valToPos(v, 'y', true);
        path.rect(left + gap / 2, Math.min(top, base), Math.max(1, width - gap), Math.max(v === 0 ? 0 : 1, Math.abs(base - top)));
      }
      return { stroke: path, fill: path };
    };
  }

  function bars(el, o) {
    return mount(el, o, (t) => {
      const labels = o.labels || [];
      const list = o.series || [];
      if (!labels.length || !list.some((s) => s.values.some(isNum))) return null;
      const fmt = o.format || formatNumber;
      const xs = labels.map((_, i) => i);
      const ellipsis = (s, n) => (s.length > n ? `${s.slice(0, Math.max(1, n - 1))}…` : s);
      return {
        data: [xs, ...list.map((s) => xs.map((i) => (isNum(s.values[i]) ? s.values[i] : null)))],
        opts: {
          series: [
            { label: o.xLabel || 'Label', value: (u, v) => (v == null ? '—' : labels[v] ?? '') },
            ...list.map((s, i) => {
              const c = colorOf(t, o, i);
              return { label: s.label, stroke: c, fill: withAlpha(c, 0.85), width: 1, paths: barPaths(i, list.length), points: { show: false }, value: (u, v) => (v == null ? '—' : fmt(v)) };
            }),
          ],
          scales: { x: { time: false, range: () => [-0.5, labels.length - 0.5] }, y: { range: zeroBasedRange } },
          axes: [
            axis(t, {
              label: o.xLabel,
              grid: { show: false },
              splits: () => xs,
              // As many characters as a label's share of the width holds (~7 px each).
              values: (u, splits) => {
                const chars = Math.max(3, Math.floor(u.bbox.width / root.uPlot.pxRatio / labels.length / 7));
                return splits.map((i) => ellipsis(labels[i] ?? '', chars));
              },
            }),
            axis(t, { label: o.yLabel, values: ticks(fmt), size: 56 }),
          ],
          cursor: { points: { show: false }, drag: { x: false, y: false } },
          legend: { live: true },
        },
      };
    });
  }

  function histogram(el, o) {
    return mount(el, o, (t) => {
      const edges = (o.edges || []).filter(isNum);
      const bins = edges.length - 1;
      const list = o.series || [];
      if (bins < 1 || !list.some((s) => s.counts.some((c) => isNum(c) && c > 0))) return null;
      const log = !!o.logX && edges[0] > 0;
      // x of a bin is its middle (geometric on a log axis), so the cursor picks the bin it is over.
      const mids = edges.slice(0, bins).map((e, i) => (log ? Math.sqrt(e * edges[i + 1]) : (e + edges[i + 1]) / 2));
      const fmt = o.format || formatNumber;
      const paths = (u, sidx, i0, i1) => {
        const path = new Path2D();
        const counts = u.data[sidx];
        const base = u.valToPos(0, 'y', true);
        for (let i = i0; i <= i1; i++) {
          const c = counts[i];
          if (!isNum(c) || c <= 0) continue;
          const l = u.valToPos(edges[i], 'x', true);
          const r = u.valToPos(edges[i + 1], 'x', true);
          const top = u.valToPos(c, 'y', true);
          path.rect(l, top, Math.max(1, r - l), base - top);
        }
        return { stroke: path, fill: path };
      };
      return {
        data: [mids, ...list.map((s) => mids.map((_, i) => (isNum(s.counts[i]) ? s.counts[i] : 0)))],
        opts: {
          series: [
            { label: o.xLabel || 'Bin', value: (u, v, s, i) => (i == null ? '—' : `${fmt(edges[i])} – ${fmt(edges[i + 1])}`) },
            ...list.map((s, i) => {
              const c = colorOf(t, o, i);
              return { label: s.label, stroke: c, fill: withAlpha(c, list.length > 1 ? 0.35 : 0.7), width: 1, paths, points: { show: false }, value: (u, v) => (v == null ? '—' : formatNumber(v)) };
            }),
          ],
          scales: {
            x: { time: false, ...(log ? { distr: 3, log: 10 } : {}), range: () => [edges[0], edges[bins]] },
            y: { range: zeroBasedRange },
          },
          axes: [
            axis(t, { label: o.xLabel, values: ticks(fmt) }),
            axis(t, { label: o.yLabel || 'Count', values: ticks(formatNumber), size: 56 }),
          ],
          cursor: { points: { show: false } },
          legend: { live: true },
        },
      };
    });
  }

  root.MlopsCharts = { line, bars, histogram, formatNumber, version: 1 };
})(typeof window !== 'undefined' ? window : globalThis);

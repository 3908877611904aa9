// Small DOM and formatting helpers shared by the views.

/**
 * h creates an element. attrs: "class", "text", "on<event>" handlers,
 * boolean or string attributes (false/null/undefined are left out), and
 * "props" to set DOM properties. Children are nodes, strings or arrays.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (key === 'class') el.className = value;
    else if (key === 'text') el.textContent = value;
    else if (key === 'props') Object.assign(el, value);
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** fmtBytes renders a byte count for people. */
export function fmtBytes(n) {
  if (n == null) return '';
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

/** fmtDate renders an RFC 3339 time as a local date and time. */
export function fmtDate(iso) {
  return iso ? dateFormat.format(new Date(iso)) : '';
}

/** fmtTime renders an RFC 3339 time as a local time of day. */
export function fmtTime(iso) {
  return iso ? timeFormat.format(new Date(iso)) : '';
}

/** timeEl is a <time> element showing a date. */
export function timeEl(iso, format = fmtDate) {
  return h('time', { datetime: iso, title: iso, text: format(iso) });
}

/**
 * sitePath returns the path of a URL the API gave (blobs are absolute URLs
 * built from the service's public URL), so the page loads them from its own
 * origin whatever name it was opened by.
 */
export function sitePath(url) {
  if (!url) return url;
  const u = new URL(url, location.href);
  return u.pathname + u.search;
}

/** thumbURL is the URL of a thumbnail of a blob, w one of 160, 320, 640. */
export function thumbURL(sha256, w) {
  return `/thumbs/${sha256}?w=${w}`;
}

/** blobKey returns the blob key at the end of a blob URL. */
export function blobKey(url) {
  return url ? sitePath(url).split('/').pop() : '';
}

const algorithmNames = {
  FLOYD_STEINBERG: 'Floyd–Steinberg',
  JARVIS_JUDICE_NINKE: 'Jarvis–Judice–Ninke',
  STUCKI: 'Stucki',
  BURKES: 'Burkes',
  SIERRA: 'Sierra',
  SIERRA_TWO_ROW: 'Sierra two-row',
  SIERRA_LITE: 'Sierra Lite',
  ATKINSON: 'Atkinson',
  BAYER_2X2: 'Bayer 2×2',
  BAYER_4X4: 'Bayer 4×4',
  BAYER_8X8: 'Bayer 8×8',
  BAYER_16X16: 'Bayer 16×16',
  BLUE_NOISE: 'Blue noise',
  RANDOM: 'Random',
  NONE: 'None (quantise only)',
};

/** ALGORITHMS lists the API's algorithms with their display names. */
export const ALGORITHMS = Object.entries(algorithmNames);

/** algorithmName returns the display name of an algorithm enum value. */
export function algorithmName(value) {
  const key = String(value || '').toUpperCase().replaceAll('-', '_');
  return algorithmNames[key] || value;
}

/** PALETTES are the palettes the service knows. */
export const PALETTES = [
  ['black-white', 'Black & white'],
  ['cga', 'CGA'],
  ['gameboy', 'Game Boy'],
  ['web-safe', 'Web-safe'],
];

let fieldIds = 0;

/** uid returns an id unique on the page, for labels and descriptions. */
export function uid(prefix) {
  fieldIds += 1;
  return `${prefix}-${fieldIds}`;
}

/** toast shows a short message at the bottom of the page. */
export function toast(message, { error = false, timeout = 5000 } = {}) {
  const box = document.getElementById('toasts');
  const el = h('div', { class: error ? 'toast error' : 'toast', text: message });
  box.append(el);
  setTimeout(() => el.remove(), timeout);
}

/**
 * recentlyDeleted holds the ids of images deleted from this page load: the
 * gallery leaves them out while the read model catches up.
 */
export const recentlyDeleted = new Set();

// The list of an image's dithers, each with its options, status, numbers,
// a button to compare it and a download link.
import { algorithmName, blobKey, fmtBytes, fmtTime, h, sitePath, thumbURL } from './dom.js';

/** DITHER_FIELDS are the fields the page reads of a dither. */
export const DITHER_FIELDS = `id levels channelLevels { r g b } algorithm serpentine strength colorSpace grayscale
  palette status url error durationMs byteSize width height colours requestedAt completedAt`;

/** ditherLabel is a short description of a dither's main options. */
export function ditherLabel(d) {
  const levels = d.channelLevels ? `${d.channelLevels.r}/${d.channelLevels.g}/${d.channelLevels.b} levels` : `${d.levels} levels`;
  return `${algorithmName(d.algorithm)} · ${d.palette ? `${d.palette} palette` : levels}`;
}

/** downloadName is the file name offered for a dither's result. */
export function downloadName(filename, d) {
  const stem = filename.replace(/\.[^.]+$/, '') || 'image';
  return `${stem}-${d.algorithm.toLowerCase().replaceAll('_', '-')}-${d.palette || `${d.levels}`}.png`;
}

function options(d) {
  return [
    d.serpentine && 'serpentine',
    d.colorSpace === 'SRGB' ? 'sRGB' : 'linear light',
    d.grayscale && 'grayscale',
    d.strength !== 1 && `strength ${d.strength}`,
  ].filter(Boolean).join(' · ');
}

function stats(d) {
  return [
    d.durationMs != null && `${d.durationMs} ms`,
    d.colours != null && `${d.colours} colours`,
    d.byteSize != null && fmtBytes(d.byteSize),
    `requested ${fmtTime(d.requestedAt)}`,
  ].filter(Boolean).join(' · ');
}

/**
 * ditherItem renders one dither. selected tells whether it is the one
 * compared; onCompare(d) is called by its Compare button. withdrawn says
 * that its image was deleted: its result is no longer served.
 */
export function ditherItem(d, { filename, selected, onCompare, withdrawn = false }) {
  // The result of a deleted image is no longer served: no preview, no links.
  const done = d.status === 'COMPLETED' && d.url && !withdrawn;
  const url = done ? sitePath(d.url) : null;
  const label = ditherLabel(d);
  return h('li', { class: 'dither', 'data-id': d.id, 'data-status': d.status, 'data-selected': String(selected) },
    h('div', { class: 'mini', 'aria-hidden': 'true' },
      done ? h('img', { src: thumbURL(blobKey(d.url), 160), alt: '', loading: 'lazy' }) : null),
    h('div', {},
      h('div', { class: 'title' }, h('span', {}, label), h('span', { class: `badge ${d.status}` }, d.status.toLowerCase())),
      h('p', { class: 'opts' }, options(d)),
      h('p', { class: 'stats' }, stats(d)),
      d.status === 'FAILED' ? h('p', { class: 'err' }, d.error || 'The dither failed.') : null,
      done ? h('div', { class: 'actions' },
        h('button', {
          type: 'button', class: 'small', 'aria-pressed': String(selected), onclick: () => onCompare(d),
          'aria-label': `Compare ${label}`,
        }, selected ? 'Comparing' : 'Compare'),
        h('a', { class: 'button small', href: url, download: downloadName(filename, d), 'aria-label': `Download ${label}` }, 'Download'))
        : null));
}

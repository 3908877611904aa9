// The image's history: its events as a timeline, oldest first.
import { algorithmName, fmtDate, h } from './dom.js';

/** EVENT_FIELDS are the fields the page reads of an event. */
export const EVENT_FIELDS = 'id streamVersion type recordedAt data metadata';

const titles = {
  ImageUploaded: 'Image uploaded',
  DitherRequested: 'Dither requested',
  DitherCompleted: 'Dither completed',
  DitherFailed: 'Dither failed',
  ImageSynced: 'Original synced to the cloud',
  DitherSynced: 'Dither synced to the cloud',
  ImageSyncFailed: 'Original not synced to the cloud',
  DitherSyncFailed: 'Dither not synced to the cloud',
  ImageDeleted: 'Image deleted',
};

// summary is one line about an event's data.
function summary(e) {
  const d = e.data || {};
  switch (e.type) {
    case 'ImageUploaded': return `${d.filename} · ${d.width}×${d.height} · ${d.content_type}`;
    case 'DitherRequested': return `${algorithmName(d.algorithm)} · ${d.palette ? `${d.palette} palette` : `${d.levels} levels`}`;
    case 'DitherCompleted': return `${d.width}×${d.height} · ${d.colours} colours · ${d.duration_ms} ms`;
    case 'DitherFailed':
    case 'ImageSyncFailed':
    case 'DitherSyncFailed': return d.reason;
    default: return '';
  }
}

function actor(e) {
  const a = e.metadata?.actor;
  return a ? ` · by ${a}` : '';
}

/** historyItem renders one event of the timeline. */
export function historyItem(e) {
  return h('li', { 'data-type': e.type, 'data-version': e.streamVersion },
    h('div', {},
      h('span', { class: 'what' }, titles[e.type] || e.type),
      h('span', { class: 'when' }, ` · v${e.streamVersion} · `, h('time', { datetime: e.recordedAt }, fmtDate(e.recordedAt)), actor(e))),
    summary(e) ? h('p', { class: 'summary' }, summary(e)) : null,
    h('details', {}, h('summary', {}, 'Event data'), h('pre', {}, JSON.stringify({ data: e.data, metadata: e.metadata }, null, 2))));
}

/** historySection returns {el, set(events)}: a closed disclosure with the timeline. */
export function historySection() {
  const count = h('span', { class: 'count' });
  const list = h('ol', { class: 'timeline', 'aria-label': 'Events, oldest first' });
  const el = h('details', { class: 'history card wide', id: 'history' },
    h('summary', {}, 'History ', count), list);
  return {
    el,
    set(events) {
      count.textContent = `(${events.length} event${events.length === 1 ? '' : 's'})`;
      list.replaceChildren(...events.map(historyItem));
    },
  };
}

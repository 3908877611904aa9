// The image page: the original beside a dithered result, the dithers, a
// form for another one, the history, and deletion. Dither outcomes and new
// events arrive through subscriptions; nothing polls.
import { gql } from './api.js';
import { compareView } from './compare.js';
import { ditherForm } from './ditherform.js';
import { DITHER_FIELDS, ditherItem, ditherLabel, downloadName } from './dithers.js';
import { fmtBytes, fmtDate, h, recentlyDeleted, sitePath, toast } from './dom.js';
import { EVENT_FIELDS, historySection } from './history.js';
import { live } from './ws.js';

const PAGE = 100;

const IMAGE = `query Image($id: ID!, $first: Int!) {
  image(id: $id) {
    id filename contentType byteSize width height sha256 status url createdAt version
    dithers(first: $first) { edges { node { ${DITHER_FIELDS} } } pageInfo { hasNextPage endCursor } }
    history(first: $first) { edges { node { ${EVENT_FIELDS} } } pageInfo { hasNextPage endCursor } }
  }
}`;
const MORE_DITHERS = `query ($id: ID!, $first: Int!, $after: String) { image(id: $id) {
  dithers(first: $first, after: $after) { edges { node { ${DITHER_FIELDS} } } pageInfo { hasNextPage endCursor } } } }`;
const MORE_EVENTS = `query ($id: ID!, $first: Int!, $after: String) { image(id: $id) {
  history(first: $first, after: $after) { edges { node { ${EVENT_FIELDS} } } pageInfo { hasNextPage endCursor } } } }`;
const COMPLETED = `subscription ($id: ID) { ditherCompleted(imageId: $id) { ${DITHER_FIELDS} } }`;
const EVENTS = `subscription ($id: ID!) { imageEvents(imageId: $id) { ${EVENT_FIELDS} } }`;
const DELETE = `mutation ($id: ID!) { deleteImage(input: {id: $id}) { deletedImageId userErrors { field message code } } }`;

// fetchAll loads an image with every dither and event, following pages.
async function fetchAll(id) {
  const { image } = await gql(IMAGE, { id, first: PAGE });
  if (!image) return null;
  const dithers = image.dithers.edges.map((e) => e.node);
  const events = image.history.edges.map((e) => e.node);
  for (let p = image.dithers.pageInfo; p.hasNextPage;) {
    const more = (await gql(MORE_DITHERS, { id, first: PAGE, after: p.endCursor })).image.dithers;
    dithers.push(...more.edges.map((e) => e.node));
    p = more.pageInfo;
  }
  for (let p = image.history.pageInfo; p.hasNextPage;) {
    const more = (await gql(MORE_EVENTS, { id, first: PAGE, after: p.endCursor })).image.history;
    events.push(...more.edges.map((e) => e.node));
    p = more.pageInfo;
  }
  return { image, dithers, events };
}

// pendingOf is the PENDING dither a DitherRequested event records (another
// client may have asked for it), in the API's shape.
function pendingOf(e) {
  const d = e.data;
  if (!d?.dither_id) return null;
  const upper = (s) => String(s || '').toUpperCase().replaceAll('-', '_');
  return {
    id: d.dither_id, levels: d.levels, channelLevels: d.channel_levels || null, algorithm: upper(d.algorithm),
    serpentine: Boolean(d.serpentine), strength: d.strength, colorSpace: upper(d.color_space),
    grayscale: Boolean(d.grayscale), palette: d.palette || null, status: 'PENDING', url: null, error: null,
    durationMs: null, byteSize: null, width: null, height: null, colours: null,
    requestedAt: d.requested_at || e.recordedAt, completedAt: null,
  };
}

/** imageView renders the page of image id into main and returns its clean-up. */
export function imageView(main, id) {
  const page = new ImagePage(main, id);
  return () => page.close();
}

class ImagePage {
  constructor(main, id) {
    this.main = main;
    this.id = id;
    this.dithers = new Map();
    this.events = new Map();
    this.mine = new Set();
    this.selected = null;
    this.built = false;
    main.replaceChildren(h('p', { class: 'loading' }, 'Loading image…'));
    // Subscribe before loading, so that nothing completes unseen in between.
    this.stops = [
      live.subscribe(COMPLETED, { id }, { next: (d) => this.onDither(d.ditherCompleted), error: (e) => this.onSubError(e) }),
      live.subscribe(EVENTS, { id }, { next: (d) => this.onEvent(d.imageEvents), error: (e) => this.onSubError(e) }),
    ];
    this.resync = () => this.load();
    live.addEventListener('resync', this.resync);
    this.load();
    this.reconcile();
  }

  // reconcile loads the image again once the subscriptions surely run: an
  // outcome recorded between the first load and their start is not lost.
  async reconcile() {
    const ok = await live.barrier();
    await new Promise((r) => setTimeout(r, 300));
    if (this.closed) return;
    await this.load();
    this.main.dataset.live = ok ? 'ready' : 'unavailable';
  }

  close() {
    this.closed = true;
    delete this.main.dataset.live;
    this.stops.forEach((stop) => stop());
    live.removeEventListener('resync', this.resync);
    this.dialog?.remove();
  }

  async load(attempt = 0) {
    let all;
    try {
      all = await fetchAll(this.id);
    } catch (err) {
      if (!this.built) this.main.replaceChildren(h('p', { class: 'notice', role: 'alert' }, `Could not load the image: ${err.message}`));
      else toast(`Could not refresh: ${err.message}`, { error: true });
      return;
    }
    if (this.closed) return;
    if (!all && !this.built && attempt < 5) {
      // A new image may not be in the read model yet: ask again shortly.
      await new Promise((r) => setTimeout(r, 200 * (attempt + 1)));
      return this.load(attempt + 1);
    }
    if (!all) {
      this.notFound();
      return undefined;
    }
    this.image = all.image;
    all.dithers.forEach((d) => this.merge(d));
    all.events.forEach((e) => this.events.set(e.id, e));
    if (!this.built) this.build();
    this.render();
  }

  notFound() {
    document.title = 'Not found · imageservice';
    this.main.replaceChildren(
      h('a', { class: 'back', href: '#/' }, '← Gallery'),
      h('h1', { tabindex: -1 }, 'Image not found'),
      h('p', {}, 'There is no image with this id.'));
    this.main.querySelector('h1').focus();
  }

  // merge keeps a dither, never letting an older PENDING copy replace an outcome.
  merge(d) {
    const known = this.dithers.get(d.id);
    if (known && known.status !== 'PENDING' && d.status === 'PENDING') return;
    this.dithers.set(d.id, d);
  }

  build() {
    const img = this.image;
    document.title = `${img.filename} · imageservice`;
    this.compare = compareView(img, `/blobs/${img.sha256}`);
    this.list = h('ol', { class: 'dithers', 'aria-label': 'Dithers, in the order requested' });
    this.history = historySection();
    this.announcer = h('p', { class: 'visually-hidden', 'aria-live': 'polite' });
    this.deletedNote = h('p', { class: 'notice', role: 'status', hidden: true },
      'This image was deleted: its files are no longer offered. Its history is kept.');
    this.downloadOriginal = h('a', { class: 'button', href: `/blobs/${img.sha256}`, download: img.filename }, 'Download original');
    this.compareSection = h('section', { class: 'card wide', 'aria-labelledby': 'compare-title' },
      h('h2', { id: 'compare-title' }, 'Compare'), this.compare.el);
    this.formSection = h('section', { class: 'card', 'aria-labelledby': 'new-dither-title' },
      h('h2', { id: 'new-dither-title' }, 'New dither'),
      ditherForm(this.id, (d) => this.onRequested(d)));
    this.deleteButton = h('button', { type: 'button', class: 'danger', onclick: () => this.confirmDelete() }, 'Delete…');
    this.main.replaceChildren(
      h('a', { class: 'back', href: '#/' }, '← Gallery'),
      h('header', { class: 'page-head' },
        h('div', {},
          h('h1', { tabindex: -1 }, img.filename),
          h('p', { class: 'meta' }, `${img.width}×${img.height} · ${img.contentType} · ${fmtBytes(img.byteSize)} · uploaded ${fmtDate(img.createdAt)}`)),
        h('div', { class: 'actions' }, this.downloadOriginal, this.deleteButton)),
      this.deletedNote,
      h('div', { class: 'layout' },
        this.compareSection,
        h('section', { class: 'card', 'aria-labelledby': 'dithers-title' },
          h('h2', { id: 'dithers-title' }, 'Dithers'), this.list),
        this.formSection,
        this.history.el),
      this.announcer);
    this.built = true;
    this.main.querySelector('h1').focus();
  }

  render() {
    const events = [...this.events.values()].sort((a, b) => a.streamVersion - b.streamVersion);
    // A deleted image's files are withdrawn (404): offer none of them.
    const deleted = this.image.status === 'DELETED' || events.some((e) => e.type === 'ImageDeleted');
    const sorted = [...this.dithers.values()].sort((a, b) => a.requestedAt.localeCompare(b.requestedAt));
    const completed = sorted.filter((d) => d.status === 'COMPLETED' && d.url);
    if (!completed.some((d) => d.id === this.selected)) this.selected = completed.at(-1)?.id ?? null;
    this.list.replaceChildren(...sorted.map((d) => ditherItem(d, {
      filename: this.image.filename, selected: d.id === this.selected, onCompare: (x) => this.select(x.id), withdrawn: deleted,
    })));
    if (!sorted.length) this.list.append(h('li', { class: 'muted' }, 'No dithers yet.'));
    const shown = this.dithers.get(this.selected);
    if (!deleted && shown !== this.shown) {
      this.shown = shown;
      this.compare.show(shown ? sitePath(shown.url) : null, shown ? ditherLabel(shown) : '', shown ? downloadName(this.image.filename, shown) : '');
    }
    this.history.set(events);
    this.deletedNote.hidden = !deleted;
    this.formSection.hidden = deleted;
    this.deleteButton.hidden = deleted;
    this.downloadOriginal.hidden = deleted;
    this.compareSection.hidden = deleted;
  }

  select(ditherId) {
    this.selected = ditherId;
    this.render();
  }

  onRequested(d) {
    this.mine.add(d.id);
    this.merge(d);
    // A quick dither's outcome can arrive over the websocket before the
    // mutation's answer: show it as onDither would have.
    if (this.dithers.get(d.id).status === 'COMPLETED') this.selected = d.id;
    this.announcer.textContent = `${ditherLabel(d)} requested.`;
    this.render();
  }

  onDither(d) {
    if (!d || this.closed) return;
    this.merge(d);
    if (this.built) {
      this.announcer.textContent = `${ditherLabel(d)} ${d.status === 'COMPLETED' ? 'completed' : 'failed'}.`;
      if (this.mine.has(d.id) && d.status === 'COMPLETED') this.selected = d.id;
      this.render();
    }
  }

  onEvent(e) {
    if (!e || this.closed) return;
    this.events.set(e.id, e);
    const d = e.type === 'DitherRequested' ? pendingOf(e) : null;
    if (d && !this.dithers.has(d.id)) this.merge(d);
    if (this.built) this.render();
  }

  onSubError(errors) {
    // A deleted image has no live updates to give: the page says so already.
    if (Array.isArray(errors) && errors.every((x) => x.extensions?.code === 'IMAGE_DELETED')) return;
    const message = Array.isArray(errors) ? errors.map((x) => x.message).join('; ') : String(errors);
    toast(`Live updates stopped: ${message}`, { error: true });
  }

  confirmDelete() {
    const cancel = h('button', { type: 'button', autofocus: true, onclick: () => this.dialog.close() }, 'Cancel');
    const confirm = h('button', { type: 'button', class: 'danger solid', onclick: () => this.delete(confirm) }, 'Delete image');
    this.dialog?.remove();
    this.dialog = h('dialog', { 'aria-labelledby': 'delete-title', 'aria-describedby': 'delete-desc' },
      h('h2', { id: 'delete-title' }, 'Delete this image?'),
      h('p', { id: 'delete-desc' }, `“${this.image.filename}” leaves the gallery with its dithers. Its history is kept. This cannot be undone.`),
      h('div', { class: 'actions' }, cancel, confirm));
    this.dialog.addEventListener('close', () => this.deleteButton.focus());
    document.body.append(this.dialog);
    this.dialog.showModal();
    cancel.focus();
  }

  async delete(button) {
    button.disabled = true;
    try {
      const { deleteImage } = await gql(DELETE, { id: this.id });
      if (deleteImage.userErrors.length) throw new Error(deleteImage.userErrors.map((e) => e.message).join('; '));
      recentlyDeleted.add(this.id);
      this.dialog.close();
      toast(`Deleted “${this.image.filename}”.`);
      location.hash = '#/';
    } catch (err) {
      button.disabled = false;
      toast(`Could not delete: ${err.message}`, { error: true });
    }
  }
}

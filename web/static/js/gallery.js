// The gallery: uploads on top, then every image newest first, a page at a
// time (a "Load more" button, pressed by itself when it scrolls into view).
import { gql, IMAGE_CARD_FIELDS } from './api.js';
import { fmtBytes, fmtDate, h, recentlyDeleted, thumbURL, toast } from './dom.js';
import { uploadPanel } from './upload.js';

const PAGE = 24;

const IMAGES = `query Images($first: Int!, $after: String) {
  images(first: $first, after: $after) {
    edges { node { ${IMAGE_CARD_FIELDS} } }
    pageInfo { hasNextPage endCursor }
  }
}`;

/** galleryView renders the gallery into main and returns its clean-up. */
export function galleryView(main) {
  document.title = 'Gallery · imageservice';
  const grid = h('ul', { class: 'grid', id: 'gallery', 'aria-label': 'Images, newest first' });
  const count = h('span', { class: 'muted', 'aria-live': 'polite' });
  const empty = h('p', { class: 'empty', hidden: true }, 'No images yet. Upload one to start dithering.');
  const more = h('button', { type: 'button', hidden: true }, 'Load more');
  const shown = new Set();
  let cursor = null;
  let loading = false;

  function addTile(image, atTop) {
    if (shown.has(image.id) || recentlyDeleted.has(image.id)) return;
    shown.add(image.id);
    const tile = tileOf(image);
    if (atTop) grid.prepend(tile); else grid.append(tile);
    empty.hidden = true;
    count.textContent = `${shown.size} image${shown.size === 1 ? '' : 's'}${more.hidden ? '' : ' shown'}`;
  }

  async function loadMore() {
    if (loading) return;
    loading = true;
    more.disabled = true;
    more.textContent = 'Loading…';
    try {
      const { images } = await gql(IMAGES, { first: PAGE, after: cursor });
      cursor = images.pageInfo.endCursor;
      more.hidden = !images.pageInfo.hasNextPage;
      images.edges.forEach((e) => addTile(e.node, false));
      empty.hidden = shown.size > 0;
      if (!shown.size) count.textContent = '';
    } catch (err) {
      toast(`Could not load the images: ${err.message}`, { error: true });
    } finally {
      loading = false;
      more.disabled = false;
      more.textContent = 'Load more';
    }
  }
  more.addEventListener('click', loadMore);
  const observer = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting) && !more.hidden) loadMore();
  }, { rootMargin: '400px' });
  observer.observe(more);

  main.replaceChildren(
    h('h1', { tabindex: -1 }, 'Images'),
    uploadPanel((image) => addTile(image, true)),
    h('div', { class: 'section-head' }, h('h2', {}, 'Gallery'), count),
    grid, empty, h('div', { class: 'more' }, more));
  loadMore();
  return () => observer.disconnect();
}

// tileOf is the gallery entry of one image: a thumbnail, never the original.
function tileOf(image) {
  const srcset = [160, 320, 640].map((w) => `${thumbURL(image.sha256, w)} ${w}w`).join(', ');
  return h('li', { class: 'tile', 'data-id': image.id },
    h('a', {
      href: `#/images/${image.id}`,
      'aria-label': `${image.filename}, ${image.width}×${image.height}, uploaded ${fmtDate(image.createdAt)}`,
    },
      h('div', { class: 'thumb' },
        h('img', {
          src: thumbURL(image.sha256, 320), srcset, sizes: '(max-width: 560px) 50vw, 240px',
          alt: '', loading: 'lazy', decoding: 'async', width: image.width, height: image.height,
        })),
      h('div', { class: 'caption' },
        h('strong', {}, image.filename),
        h('span', {}, `${image.width}×${image.height} · ${fmtBytes(image.byteSize)}`),
        h('span', {}, fmtDate(image.createdAt)))));
}

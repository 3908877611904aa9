// The comparison viewer: the original and a dithered result stacked, a
// split slider between them, and zoom levels counted in device pixels so
// that 1:1 shows every pixel of the result as it is.
import { h, uid } from './dom.js';

const ZOOMS = [['fit', 'Fit'], ['1', '1:1'], ['2', '2:1'], ['4', '4:1']];

/**
 * compareView returns {el, show(url, label)} for an image {width, height,
 * filename} whose original is at originalURL.
 */
export function compareView(image, originalURL) {
  let zoom = 'fit';
  const sliderId = uid('split');
  const result = h('img', { alt: 'Dithered result', draggable: 'false' });
  const over = h('div', { class: 'over', hidden: true }, result);
  const stage = h('div', { class: 'stage' },
    h('img', { src: originalURL, alt: `Original: ${image.filename}`, width: image.width, height: image.height, draggable: 'false' }),
    over,
    h('div', { class: 'divider', 'aria-hidden': 'true', hidden: true }),
    h('span', { class: 'tag left', 'aria-hidden': 'true' }, 'Original'),
    h('span', { class: 'tag right', 'aria-hidden': 'true', hidden: true }, 'Dithered'));
  const viewport = h('div', { class: 'viewport', 'data-zoom': 'fit', tabindex: 0, 'aria-label': 'Comparison view; scroll to pan when zoomed' }, stage);
  const slider = h('input', {
    type: 'range', id: sliderId, min: 0, max: 100, value: 50, disabled: true,
    'aria-valuetext': '50 % original', oninput: () => split(Number(slider.value)),
  });
  const zoomButtons = ZOOMS.map(([value, label]) => h('button', {
    type: 'button', 'aria-pressed': String(value === zoom), 'data-zoom': value, onclick: () => setZoom(value),
  }, label));
  const caption = h('span', {}, 'The dithered result appears here when it is ready.');
  const download = h('a', { hidden: true }, 'Download this result');
  const el = h('div', { class: 'compare' },
    h('div', { class: 'viewer-controls' },
      h('div', { class: 'segmented', role: 'group', 'aria-label': 'Zoom (1:1 is one image pixel per screen pixel)' }, zoomButtons),
      h('div', { class: 'field' },
        h('label', { for: sliderId }, 'Split: original ◀ ▶ dithered'),
        slider)),
    viewport,
    h('div', { class: 'viewer-foot' }, caption, download));

  function split(percent) {
    stage.style.setProperty('--split', `${percent}%`);
    slider.setAttribute('aria-valuetext', `${percent} % original`);
  }

  function setZoom(value) {
    zoom = value;
    viewport.dataset.zoom = value;
    zoomButtons.forEach((b) => b.setAttribute('aria-pressed', String(b.dataset.zoom === value)));
    if (value === 'fit') {
      stage.style.width = `min(100%, calc(70vh * ${image.width / image.height}))`;
    } else {
      stage.style.width = `${(image.width * Number(value)) / window.devicePixelRatio}px`;
    }
  }

  stage.addEventListener('pointerdown', (e) => {
    if (slider.disabled) return;
    stage.setPointerCapture(e.pointerId);
    follow(e);
  });
  stage.addEventListener('pointermove', (e) => { if (stage.hasPointerCapture(e.pointerId)) follow(e); });
  function follow(e) {
    const box = stage.getBoundingClientRect();
    const percent = Math.round(Math.min(100, Math.max(0, ((e.clientX - box.left) / box.width) * 100)));
    slider.value = percent;
    split(percent);
  }

  setZoom('fit');
  split(50);
  return {
    el,
    /** show compares with the result at url (null: the original only). */
    show(url, label, filename) {
      const on = Boolean(url);
      over.hidden = !on;
      stage.querySelector('.divider').hidden = !on;
      stage.querySelector('.tag.right').hidden = !on;
      slider.disabled = !on;
      download.hidden = !on;
      if (!on) {
        caption.textContent = 'The dithered result appears here when it is ready.';
        return;
      }
      result.src = url;
      caption.textContent = `Compared with: ${label}`;
      download.href = url;
      download.setAttribute('download', filename);
    },
  };
}

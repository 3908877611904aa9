// The upload panel: a drop zone and a file picker for several files at
// once, each sent on its own with a progress bar and its errors beside it.
import { upload } from './api.js';
import { fmtBytes, h, uid } from './dom.js';

const ACCEPT = 'image/png,image/jpeg,image/gif,image/webp';

/**
 * uploadPanel returns the panel's element. onUploaded(image) is called
 * for every accepted file.
 */
export function uploadPanel(onUploaded) {
  const list = h('ul', { class: 'uploads', 'aria-label': 'Uploads' });
  const inputId = uid('file');
  const input = h('input', {
    type: 'file', id: inputId, multiple: true, accept: ACCEPT, 'aria-describedby': `${inputId}-hint`,
    onchange: () => { send([...input.files]); input.value = ''; },
  });
  const zone = h('div', { class: 'dropzone' },
    h('p', { class: 'big' }, 'Drop images here'),
    input,
    h('label', { for: inputId, class: 'button primary' }, 'Choose images…'),
    h('p', { class: 'hint', id: `${inputId}-hint` }, 'PNG, JPEG, GIF or WebP · several at once · each is dithered automatically'));

  function send(files) {
    for (const file of files) uploadOne(file, list, onUploaded);
  }
  wireDrop(zone, send);
  return h('section', { 'aria-labelledby': 'upload-title' },
    h('h2', { id: 'upload-title', class: 'visually-hidden' }, 'Upload'), zone, list);
}

// wireDrop makes the zone (and the window, while dragging over it) accept
// dropped files.
function wireDrop(zone, send) {
  let depth = 0;
  zone.addEventListener('dragenter', (e) => { e.preventDefault(); depth++; zone.classList.add('dragging'); });
  zone.addEventListener('dragover', (e) => { e.preventDefault(); e.dataTransfer.dropEffect = 'copy'; });
  zone.addEventListener('dragleave', () => { if (--depth <= 0) { depth = 0; zone.classList.remove('dragging'); } });
  zone.addEventListener('drop', (e) => {
    e.preventDefault();
    depth = 0;
    zone.classList.remove('dragging');
    send([...e.dataTransfer.files]);
  });
}

// uploadOne shows one file in the list and sends it.
function uploadOne(file, list, onUploaded) {
  const progressId = uid('progress');
  const name = h('span', { class: 'name', id: `${progressId}-name` }, file.name);
  const state = h('span', { class: 'state' }, `${fmtBytes(file.size)} · waiting`);
  const bar = h('progress', { id: progressId, max: 100, value: 0, 'aria-labelledby': `${progressId}-name` });
  const item = h('li', { class: 'upload', 'data-state': 'sending', 'data-filename': file.name }, name, state, bar);
  list.prepend(item);
  upload(file, (f) => {
    bar.value = Math.round(f * 100);
    state.textContent = f < 1 ? `${Math.round(f * 100)} %` : 'Processing…';
  }).then((payload) => {
    if (payload.userErrors.length || !payload.image) return failed(item, state, bar, payload.userErrors);
    item.dataset.state = 'done';
    bar.value = 100;
    bar.hidden = true;
    state.replaceChildren('Uploaded · ', h('a', { href: `#/images/${payload.image.id}` }, 'Open'));
    onUploaded(payload.image);
    return undefined;
  }).catch((err) => failed(item, state, bar, [{ message: err.message }]));
}

function failed(item, state, bar, errors) {
  item.dataset.state = 'error';
  bar.hidden = true;
  state.textContent = 'Not uploaded';
  const messages = errors.length ? errors : [{ message: 'The service refused the file.' }];
  item.append(h('ul', { class: 'errors', role: 'alert' }, messages.map((e) => h('li', {}, e.message))));
}

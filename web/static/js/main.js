// The single page's router: #/ is the gallery, #/images/<id> an image.
import { galleryView } from './gallery.js';
import { imageView } from './image.js';
import { live } from './ws.js';

const main = document.getElementById('main');
let cleanup = () => {};

function route() {
  const hash = location.hash || '#/';
  if (!hash.startsWith('#/')) return;
  cleanup();
  const match = /^#\/images\/([0-9a-fA-F-]{36})$/.exec(hash);
  cleanup = match ? imageView(main, match[1]) : galleryView(main);
  window.scrollTo(0, 0);
}

function showLiveState(state) {
  const el = document.getElementById('live-indicator');
  el.dataset.state = state;
  const words = { idle: 'Live updates idle', connecting: 'Connecting for live updates', open: 'Live updates on', closed: 'Live updates lost; reconnecting' };
  el.title = words[state] || state;
  el.setAttribute('aria-label', el.title);
}

document.getElementById('skip-link').addEventListener('click', (e) => {
  e.preventDefault();
  main.focus();
});
live.addEventListener('state', (e) => showLiveState(e.detail));
window.addEventListener('hashchange', route);
route();

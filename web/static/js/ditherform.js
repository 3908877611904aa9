// The form that requests another dither of an image.
import { gql } from './api.js';
import { ALGORITHMS, h, PALETTES, uid } from './dom.js';
import { DITHER_FIELDS } from './dithers.js';

const REQUEST = `mutation Request($input: RequestDitherInput!) {
  requestDither(input: $input) {
    dither { ${DITHER_FIELDS} }
    userErrors { field message code }
  }
}`;

// field makes a labelled control with a hint and a place for its error.
function field(label, control, { hint, check = false, full = false } = {}) {
  const id = control.id || uid('f');
  control.id = id;
  const error = h('span', { class: 'field-error', id: `${id}-error`, 'data-error-for': control.name });
  const hintEl = hint ? h('span', { class: 'hint', id: `${id}-hint` }, hint) : null;
  control.setAttribute('aria-describedby', [hintEl && `${id}-hint`, `${id}-error`].filter(Boolean).join(' '));
  const label_ = h('label', { for: id }, label);
  const cls = ['field', check && 'check', full && 'full'].filter(Boolean).join(' ');
  return check
    ? h('div', { class: cls }, control, label_, hintEl, error)
    : h('div', { class: cls }, label_, control, hintEl, error);
}

function select(name, options, value) {
  return h('select', { name }, options.map(([v, label]) => h('option', { value: v, selected: v === value }, label)));
}

/**
 * ditherForm returns the form for the image imageId; onRequested(dither)
 * receives each dither it requested.
 */
export function ditherForm(imageId, onRequested) {
  const submit = h('button', { type: 'submit', class: 'primary' }, 'Request dither');
  const formError = h('p', { class: 'form-error', role: 'alert' });
  const form = h('form', { class: 'form-grid', 'aria-labelledby': 'new-dither-title', novalidate: true },
    field('Algorithm', select('algorithm', ALGORITHMS, 'FLOYD_STEINBERG'), { full: true }),
    field('Levels', h('input', { type: 'number', name: 'levels', min: 2, max: 256, value: 2, required: true }),
      { hint: 'per channel, 2 to 256' }),
    field('Strength', h('input', { type: 'number', name: 'strength', min: 0, max: 1, step: 0.05, value: 1 }),
      { hint: '0 to 1' }),
    field('Colour space', select('colorSpace', [['LINEAR', 'Linear light'], ['SRGB', 'sRGB']], 'LINEAR')),
    field('Palette', select('palette', [['', 'None'], ...PALETTES], ''), { hint: 'replaces the levels' }),
    field('Serpentine scan', h('input', { type: 'checkbox', name: 'serpentine' }),
      { check: true, full: true, hint: 'error diffusion only' }),
    field('Grayscale', h('input', { type: 'checkbox', name: 'grayscale' }), { check: true, full: true }),
    h('div', { class: 'full actions' }, submit),
    h('div', { class: 'full' }, formError));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    clearErrors(form, formError);
    submit.disabled = true;
    submit.textContent = 'Requesting…';
    try {
      const { requestDither } = await gql(REQUEST, { input: inputOf(form, imageId) });
      if (requestDither.userErrors.length) showErrors(form, formError, requestDither.userErrors);
      else onRequested(requestDither.dither);
    } catch (err) {
      formError.textContent = err.message;
    } finally {
      submit.disabled = false;
      submit.textContent = 'Request dither';
    }
  });
  return form;
}

// inputOf reads the form into a RequestDitherInput.
function inputOf(form, imageId) {
  const f = form.elements;
  const input = {
    imageId,
    algorithm: f.algorithm.value,
    levels: Number.parseInt(f.levels.value, 10),
    strength: Number.parseFloat(f.strength.value),
    colorSpace: f.colorSpace.value,
    serpentine: f.serpentine.checked,
    grayscale: f.grayscale.checked,
    idempotencyKey: crypto.randomUUID?.() ?? undefined,
  };
  if (f.palette.value) input.palette = f.palette.value;
  if (Number.isNaN(input.levels)) input.levels = 0;
  if (Number.isNaN(input.strength)) input.strength = -1;
  return input;
}

function clearErrors(form, formError) {
  formError.textContent = '';
  form.querySelectorAll('[data-error-for]').forEach((el) => { el.textContent = ''; });
  form.querySelectorAll('[aria-invalid]').forEach((el) => el.removeAttribute('aria-invalid'));
}

// showErrors puts each user error next to its field, or under the form.
function showErrors(form, formError, errors) {
  let focused = false;
  for (const err of errors) {
    const name = (err.field || '').split('.').pop();
    const control = name && form.elements[name];
    const slot = control && form.querySelector(`[data-error-for="${name}"]`);
    if (!slot) {
      formError.textContent = [formError.textContent, err.message].filter(Boolean).join(' ');
      continue;
    }
    slot.textContent = err.message;
    control.setAttribute('aria-invalid', 'true');
    if (!focused) { control.focus(); focused = true; }
  }
}

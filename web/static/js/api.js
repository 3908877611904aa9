// The GraphQL API over HTTP: queries and mutations with fetch, uploads with
// XMLHttpRequest (for upload progress) as GraphQL multipart requests.

const endpoint = '/query';

/** GraphQLError carries the errors of a GraphQL response. */
export class GraphQLError extends Error {
  constructor(errors) {
    super(errors.map((e) => e.message).join('; ') || 'request failed');
    this.name = 'GraphQLError';
    this.errors = errors;
  }
}

/** gql runs a query or mutation and returns its data; it throws on errors. */
export async function gql(query, variables = {}) {
  let res;
  try {
    res = await fetch(endpoint, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ query, variables }),
    });
  } catch (err) {
    throw new Error(`The service cannot be reached (${err.message}).`);
  }
  const body = await res.json().catch(() => null);
  if (!body) throw new Error(`The service answered ${res.status} ${res.statusText}.`);
  if (body.errors?.length) throw new GraphQLError(body.errors);
  return body.data;
}

export const IMAGE_CARD_FIELDS = 'id filename width height byteSize sha256 createdAt contentType';

const UPLOAD = `mutation Upload($input: UploadImageInput!) {
  uploadImage(input: $input) {
    image { ${IMAGE_CARD_FIELDS} }
    dither { id status }
    userErrors { field message code }
  }
}`;

/**
 * upload sends one file with the uploadImage mutation. onProgress receives
 * the fraction sent (0..1). It resolves to the mutation's payload
 * ({image, dither, userErrors}) and rejects when the request fails.
 * The returned promise has an abort() method.
 */
export function upload(file, onProgress) {
  const xhr = new XMLHttpRequest();
  const promise = new Promise((resolve, reject) => {
    const form = new FormData();
    form.append('operations', JSON.stringify({
      query: UPLOAD,
      variables: { input: { file: null, filename: file.name } },
    }));
    form.append('map', JSON.stringify({ 0: ['variables.input.file'] }));
    form.append('0', file, file.name);
    xhr.open('POST', endpoint);
    xhr.responseType = 'json';
    xhr.setRequestHeader('Accept', 'application/json');
    xhr.setRequestHeader('GraphQL-Require-Preflight', '1'); // the server's CSRF protection
    xhr.upload.addEventListener('progress', (e) => {
      if (e.lengthComputable) onProgress(e.loaded / e.total);
    });
    xhr.addEventListener('load', () => {
      const body = xhr.response;
      if (xhr.status === 413) return reject(new Error('The file is too large for the service.'));
      if (!body) return reject(new Error(`The service answered ${xhr.status}.`));
      if (body.errors?.length) return reject(new GraphQLError(body.errors));
      resolve(body.data.uploadImage);
    });
    xhr.addEventListener('error', () => reject(new Error('The upload failed: network error.')));
    xhr.addEventListener('abort', () => reject(new Error('The upload was cancelled.')));
    xhr.send(form);
  });
  promise.abort = () => xhr.abort();
  return promise;
}

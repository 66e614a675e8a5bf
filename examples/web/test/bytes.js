// Byte helpers shared by the tests (not a test file: the runner is given the test files).

/** The byte arrays `parts`, one after another, in one new array. */
export const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
};

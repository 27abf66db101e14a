// SPA: rendered in the browser only; adapter-static emits a single index.html fallback.
export const ssr = false;
export const prerender = false;

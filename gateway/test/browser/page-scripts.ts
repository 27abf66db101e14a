/**
 * Scripts run inside the page (as source text: the tests compile without the DOM's types).
 */

/** Log `[node, status]` every time a graph node is drawn or changes state, into `window.nodeLog`. */
export const RECORD_NODE_STATES = `(() => {
  const log = (window.nodeLog = []);
  const note = (el) => {
    const id = el.getAttribute('data-testid');
    if (id && id.startsWith('node-')) log.push([id.slice(5), el.getAttribute('data-status') || '']);
  };
  new MutationObserver((ms) => {
    for (const m of ms) {
      if (m.type === 'attributes') note(m.target);
      m.addedNodes.forEach((n) => n instanceof Element && [n, ...n.querySelectorAll('[data-testid^="node-"]')].forEach(note));
    }
  }).observe(document.body, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-status'] });
})()`;

/** Collect the duration of every long task (main thread busy > 50 ms) into `window.longTasks`, from page start. */
export const RECORD_LONG_TASKS = `(() => {
  const tasks = (window.longTasks = []);
  new PerformanceObserver((l) => l.getEntries().forEach((e) => tasks.push(e.duration))).observe({ type: 'longtask', buffered: true });
})()`;

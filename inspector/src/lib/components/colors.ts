/** One colour per envelope family, shared by the message flow and the event list. */
export function typeColor(type: string): string {
  if (/failed|refused|exceeded|unknown_outcome/.test(type)) return '#cf222e';
  // Asking a person and their answers.
  if (type.startsWith('wait.')) return '#bf3989';
  if (type.startsWith('run.')) return '#6639ba';
  if (type.startsWith('node.') || type.startsWith('loop.')) return '#0969da';
  if (type.startsWith('branch.')) return '#8250df';
  // A call waiting for its provider's capacity: the colour of the budget's waits.
  if (type === 'llm.throttled') return '#9a6700';
  if (type.startsWith('llm.')) return '#bc4c00';
  if (type.startsWith('tool.') || type.startsWith('effect.')) return '#1a7f37';
  if (type.startsWith('budget.')) return '#9a6700';
  return '#57606a';
}

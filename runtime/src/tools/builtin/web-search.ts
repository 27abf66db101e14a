import { z } from 'zod';
import { defineTool } from '../registry.js';
import { hashHex } from './digest.js';

/**
 * `web_search`: find web pages about a query. This build has no search provider wired in, so it
 * answers offline with results derived from the query alone: the same query gives the same
 * results, and `offline: true` plus a note make the stand-in impossible to mistake for real data.
 */
export const webSearch = defineTool({
  name: 'web_search',
  description: 'Search the web and return the top results (title, url, snippet) for a query.',
  effect: 'read',
  input: z.object({
    query: z.string().min(1).max(500),
    maxResults: z.number().int().min(1).max(10).default(3),
  }),
  async handler({ query, maxResults }) {
    const slug =
      query
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '-')
        .replace(/^-|-$/g, '')
        .slice(0, 60) || 'query';
    const results = Array.from({ length: maxResults }, (_, i) => {
      const id = hashHex(`${query}\n${i}`);
      return {
        title: `${query.slice(0, 80)}: ${SOURCE_KINDS[i % SOURCE_KINDS.length] ?? 'source'} ${i + 1}`,
        url: `https://example.invalid/${slug}/${id}`,
        snippet: `Offline stand-in result ${i + 1} for "${query.slice(0, 80)}" (id ${id}); no page was fetched.`,
      };
    });
    return { offline: true, note: 'offline stand-in: no web search was made', query, results };
  },
});

const SOURCE_KINDS = ['overview', 'tutorial', 'reference', 'case study', 'discussion', 'benchmark'] as const;

import { BlockList, isIP } from 'node:net';
import { AoError } from '@ao/graphs';

/**
 * Which addresses the HTTP tool refuses unless allowed: everything that is not the public
 * internet. A model that can make requests must not reach the node's own services, the cloud
 * metadata endpoint (169.254.169.254) or the private network it runs in.
 */
const V4: Array<[string, number, string]> = [
  ['0.0.0.0', 8, 'unspecified'],
  ['10.0.0.0', 8, 'private'],
  ['100.64.0.0', 10, 'private'], // carrier-grade NAT (shared address space)
  ['127.0.0.0', 8, 'loopback'],
  ['169.254.0.0', 16, 'link-local'],
  ['172.16.0.0', 12, 'private'],
  ['192.0.0.0', 24, 'private'], // IETF protocol assignments
  ['192.0.2.0', 24, 'reserved'], // documentation
  ['192.168.0.0', 16, 'private'],
  ['198.18.0.0', 15, 'private'], // benchmarking
  ['198.51.100.0', 24, 'reserved'],
  ['203.0.113.0', 24, 'reserved'],
  ['224.0.0.0', 4, 'multicast'],
  ['240.0.0.0', 4, 'reserved'], // includes 255.255.255.255 (broadcast)
];
const V6: Array<[string, number, string]> = [
  ['::', 128, 'unspecified'],
  ['::1', 128, 'loopback'],
  ['::', 96, 'reserved'], // IPv4-compatible (deprecated)
  ['100::', 64, 'reserved'], // discard-only
  ['2001:db8::', 32, 'reserved'], // documentation
  ['fc00::', 7, 'unique-local'],
  ['fe80::', 10, 'link-local'],
  ['fec0::', 10, 'private'], // site-local (deprecated)
  ['ff00::', 8, 'multicast'],
];

const classes = new Map<string, BlockList>();
for (const [net, prefix, cls] of V4) (classes.get(cls) ?? classes.set(cls, new BlockList()).get(cls)!).addSubnet(net, prefix, 'ipv4');
for (const [net, prefix, cls] of V6) (classes.get(cls) ?? classes.set(cls, new BlockList()).get(cls)!).addSubnet(net, prefix, 'ipv6');

/** The eight 16-bit groups of an IPv6 address (`::` expanded, a dotted IPv4 tail converted). */
function groupsOf(v6: string): number[] {
  let s = v6.split('%')[0]!.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    const b = dotted[1]!.split('.').map(Number);
    s = `${s.slice(0, dotted.index)}${((b[0]! << 8) | b[1]!).toString(16)}:${((b[2]! << 8) | b[3]!).toString(16)}`;
  }
  const [head, tail] = s.includes('::') ? s.split('::') : [s, undefined];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const fill = tail === undefined ? [] : Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...fill, ...t].map((g) => parseInt(g || '0', 16));
}

/** The IPv4 address an IPv6 one carries: IPv4-mapped (`::ffff:a.b.c.d`) or NAT64 (`64:ff9b::a.b.c.d`). */
export function embeddedIpv4(v6: string): string | undefined {
  const g = groupsOf(v6);
  const mapped = g.slice(0, 5).every((x) => x === 0) && g[5] === 0xffff;
  const nat64 = g[0] === 0x64 && g[1] === 0xff9b && g.slice(2, 6).every((x) => x === 0);
  if (!mapped && !nat64) return undefined;
  return [g[6]! >> 8, g[6]! & 0xff, g[7]! >> 8, g[7]! & 0xff].join('.');
}

/** Why an address is not public (`loopback`, `private`, ...), or undefined for a public one. */
export function nonPublicClass(address: string): string | undefined {
  const family = isIP(address);
  if (family === 0) return 'invalid';
  if (family === 6) {
    const v4 = embeddedIpv4(address);
    if (v4) return nonPublicClass(v4);
  }
  const type = family === 4 ? 'ipv4' : 'ipv6';
  for (const [cls, list] of classes) if (list.check(family === 6 ? address.split('%')[0]! : address, type)) return cls;
  return undefined;
}

/** What AO_HTTP_TOOL_ALLOW lets through: host names (exact, any address they resolve to), addresses and CIDRs. */
export interface HttpAllowList {
  readonly hosts: ReadonlySet<string>;
  readonly addresses: BlockList;
  readonly empty: boolean;
}

/**
 * Parse an allow-list: comma-separated host names, IP addresses and CIDRs, e.g.
 * `127.0.0.1,10.1.0.0/16,internal.example.com,::1`.
 * @throws AoError AO_CONFIG_INVALID naming the bad entry.
 */
export function parseAllowList(spec: string | readonly string[] | undefined): HttpAllowList {
  const entries = (typeof spec === 'string' ? spec.split(',') : (spec ?? [])).map((e) => e.trim()).filter(Boolean);
  const hosts = new Set<string>();
  const addresses = new BlockList();
  for (const e of entries) {
    const [addr, prefix, extra] = e.split('/');
    const family = isIP(addr!.replace(/^\[|\]$/g, ''));
    if (family && extra === undefined) {
      const a = addr!.replace(/^\[|\]$/g, '');
      const type = family === 4 ? 'ipv4' : 'ipv6';
      if (prefix === undefined) addresses.addAddress(a, type);
      else {
        const n = Number(prefix);
        if (!/^\d+$/.test(prefix) || n > (family === 4 ? 32 : 128))
          throw new AoError('AO_CONFIG_INVALID', `AO_HTTP_TOOL_ALLOW: bad CIDR "${e}"`, { field: 'AO_HTTP_TOOL_ALLOW' });
        addresses.addSubnet(a, n, type);
      }
    } else if (/^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*\.?$/.test(e)) {
      hosts.add(e.toLowerCase().replace(/\.$/, ''));
    } else {
      throw new AoError('AO_CONFIG_INVALID', `AO_HTTP_TOOL_ALLOW: "${e}" is not a host name, an IP address or a CIDR`, { field: 'AO_HTTP_TOOL_ALLOW' });
    }
  }
  return { hosts, addresses, empty: entries.length === 0 };
}

/** Whether an allow-list lets this address through (an IPv4-mapped address is checked as its IPv4 too). */
export function allowsAddress(allow: HttpAllowList, address: string): boolean {
  const family = isIP(address);
  if (!family) return false;
  if (allow.addresses.check(address, family === 4 ? 'ipv4' : 'ipv6')) return true;
  const v4 = family === 6 ? embeddedIpv4(address) : undefined;
  return v4 !== undefined && allow.addresses.check(v4, 'ipv4');
}

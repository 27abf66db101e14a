/**
 * The limited fake provider in a process of its own (argv[2]: its limits as JSON, argv[3]: the
 * model's latency in ms), so that the bench's own load (a gateway following 800 runs) does not
 * delay when it sees requests arrive. Prints its URL; `GET /_stats` gives its counts.
 */
import { FakeProvider } from '@ao/runtime/fake-llm';
import type { FakeLimits } from '@ao/runtime/fake-llm';

const limits = JSON.parse(process.argv[2] ?? '{}') as FakeLimits;
const delayMs = Number(process.argv[3] ?? 0);
const fake = await FakeProvider.start(() => ({ text: 'ok', usage: { input: 30, output: 12 }, delayMs }), { limits });
console.log(`fake provider at ${fake.url}`);
process.on('SIGTERM', () => void fake.close().then(() => process.exit(0)));

import { busConformance } from '../conformance.js';
import { InProcessBus } from './in-process-bus.js';

busConformance('in-process', async () => new InProcessBus({ onError: () => {} }));

import { measureThroughput } from './throughput.ts';
console.log(await measureThroughput(3000, 16));
